import { resolve } from 'node:path';
import type { ConfigSources } from '../../../src/config/config-loader.js';
import { loadDownloadSettings } from '../../../src/config/download-settings.js';
import { ConfigError } from '../../../src/utils/errors.js';

const CWD = resolve('/work/project');

function sources(partial: Partial<ConfigSources> = {}): ConfigSources {
  return { flags: {}, env: {}, dotenv: {}, dotenvPath: '.env', ...partial };
}

function problemsOf(s: ConfigSources): readonly string[] {
  try {
    loadDownloadSettings(s, CWD);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('resolves paths against the working directory and applies every default', () => {
    const settings = loadDownloadSettings(sources({ flags: { file: 'urls.json' } }), CWD);
    expect(settings).toEqual({
      file: resolve(CWD, 'urls.json'),
      target: { kind: 'disk', dir: resolve(CWD, 'downloads') },
      concurrency: 16,
      perHost: 6,
      retries: 3,
      retryDelayMs: 1000,
      maxRetryWaitMs: 30_000,
      connectTimeoutMs: 10_000,
      headersTimeoutMs: 30_000,
      bodyTimeoutMs: 30_000,
      maxRedirects: 5,
      existing: 'skip',
      hash: 'all',
      quiet: false,
      json: false,
      maxInputBytes: 64 * 1024 * 1024,
    });
  });

  it('lowers the per-host default to --concurrency', () => {
    const settings = loadDownloadSettings(sources({ flags: { file: 'u.json', concurrency: '2' } }), CWD);
    expect(settings.perHost).toBe(2);
  });
});

describe('sources and precedence', () => {
  it('reads variables, and a flag beats the environment which beats .env', () => {
    const settings = loadDownloadSettings(
      sources({
        flags: { file: 'u.json', retries: '1' },
        env: { DOWNLOAD_RETRIES: '7', DOWNLOAD_MAX_RETRY_WAIT: '2m', DOWNLOAD_MAX_BYTES: '10MiB' },
        dotenv: {
          DOWNLOAD_MAX_RETRY_WAIT: '5s',
          DOWNLOAD_CONCURRENCY: '32',
          DOWNLOAD_REPORT: 'out/report.json',
        },
      }),
      CWD,
    );
    expect(settings).toMatchObject({
      retries: 1,
      maxRetryWaitMs: 120_000,
      maxBytes: 10 * 1024 * 1024,
      concurrency: 32,
      reportFile: resolve(CWD, 'out/report.json'),
    });
  });

  it('parses an S3 target and its AWS settings', () => {
    const settings = loadDownloadSettings(
      sources({
        flags: { file: 'u.json', to: 's3://my-bucket/raw/2024/' },
        env: { AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' },
      }),
      CWD,
    );
    expect(settings.target).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: 'raw/2024' });
    expect(settings.aws).toMatchObject({
      region: 'eu-west-1',
      s3Endpoint: 'http://127.0.0.1:5000',
      s3ForcePathStyle: true,
    });
  });

  it('ignores AWS settings for a disk target', () => {
    const settings = loadDownloadSettings(
      sources({ flags: { file: 'u.json' }, env: { AWS_MAX_ATTEMPTS: 'lots' } }),
      CWD,
    );
    expect(settings.aws).toBeUndefined();
  });

  it.each([
    [{ overwrite: true }, 'overwrite'],
    [{ ifChanged: true }, 'if-changed'],
    [{ skipExisting: true }, 'skip'],
    [{ skipExisting: 'false' }, 'overwrite'],
  ])('%j -> existing %s', (flags, existing) => {
    expect(loadDownloadSettings(sources({ flags: { file: 'u.json', ...flags } }), CWD).existing).toBe(
      existing,
    );
  });
});

describe('problems: one line each, naming the flag or variable', () => {
  it('requires --file', () => {
    expect(problemsOf(sources())).toEqual([
      '--file (or DOWNLOAD_FILE) is required: JSON file listing the URLs (see schemas/urls.schema.json)',
    ]);
  });

  it.each([
    [{ concurrency: '0' }, '--concurrency: got "0", expected an integer from 1 to 1024'],
    [{ retries: '-1' }, '--retries: got "-1", expected an integer from 0 to 100'],
    [
      { maxBytes: 'big' },
      '--max-bytes: got "big", expected a size in bytes such as 1048576, 512KiB, 10MiB or 2GiB (at least 1)',
    ],
    [{ maxRedirects: '50' }, '--max-redirects: got "50", expected an integer from 0 to 20'],
    [{ hash: 'md5' }, '--hash: got "md5", expected one of all, expected'],
    [
      { to: 'https://bucket/x' },
      '--to: got "https://bucket/x", expected an S3 URL such as s3://bucket or s3://bucket/prefix',
    ],
    [
      { to: 's3://Bad_Bucket/x' },
      '--to: got "s3://Bad_Bucket/x", expected an S3 URL such as s3://bucket or s3://bucket/prefix (bucket names are 3-63 lowercase letters, digits, dots and hyphens)',
    ],
    [
      { to: 's3://bucket/../x' },
      '--to: got "s3://bucket/../x", expected an S3 URL such as s3://bucket or s3://bucket/prefix without "." or ".." in the prefix',
    ],
    [{ concurrency: '4', perHost: '8' }, '--per-host: got 8, expected at most the --concurrency value (4)'],
    [{ overwrite: true, ifChanged: true }, '--overwrite and --if-changed: give one or the other'],
    [{ skipExisting: true, overwrite: true }, '--skip-existing and --overwrite: give one or the other'],
    [{ skipExisting: true, ifChanged: true }, '--skip-existing and --if-changed: give one or the other'],
    [{ out: 'dl', to: 's3://bucket' }, '--out and --to: give one or the other'],
  ])('%j', (flags, problem) => {
    expect(problemsOf(sources({ flags: { file: 'u.json', ...flags } }))).toEqual([problem]);
  });

  it('names the variable when the value came from the environment, and lists every problem', () => {
    const problems = problemsOf(
      sources({
        flags: { file: 'u.json' },
        env: { DOWNLOAD_CONCURRENCY: '4', DOWNLOAD_PER_HOST: '5', DOWNLOAD_OVERWRITE: 'yes' },
        dotenv: { DOWNLOAD_IF_CHANGED: 'true', DOWNLOAD_BODY_TIMEOUT: 'forever' },
      }),
    );
    expect(problems).toEqual([
      'DOWNLOAD_BODY_TIMEOUT (in .env): got "forever", expected a duration such as 500ms, 30s, 5m or 1h (bare numbers are seconds) from 0s to 1h',
      'DOWNLOAD_PER_HOST: got 5, expected at most the DOWNLOAD_CONCURRENCY value (4)',
      'DOWNLOAD_OVERWRITE and DOWNLOAD_IF_CHANGED: give one or the other',
    ]);
  });
});
