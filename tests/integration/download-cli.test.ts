/**
 * The CLI layer of download-urls, in-process: argv and environment in, exit code and output out.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { useDownloadFixture } from '../helpers/download-fixture.js';
import { startFaultServer, testBytes } from '../helpers/http-fault-server.js';

const fx = useDownloadFixture('aws-msg-cli-');

describe('bad usage exits 2 with one line per problem and touches nothing', () => {
  it.each([
    [
      [],
      'aws-msg: --file (or DOWNLOAD_FILE) is required: JSON file listing the URLs (see schemas/urls.schema.json)\n',
    ],
    [
      ['--file', 'x.json', '--concurrency', '4', '--per-host', '9', '--overwrite', '--if-changed'],
      'aws-msg: --per-host: got 9, expected at most the --concurrency value (4)\n' +
        'aws-msg: --overwrite and --if-changed: give one or the other\n',
    ],
    [
      ['--file', 'x.json', '--retry-delay', 'soon'],
      /^aws-msg: --retry-delay: got "soon", expected a duration/,
    ],
  ])('%j', async (argv, stderr) => {
    const result = await runCli(['download-urls', ...argv]);
    expect(result.code).toBe(2);
    if (typeof stderr === 'string') expect(result.stderr).toBe(stderr);
    else expect(result.stderr).toMatch(stderr);
    expect(result.stdout).toBe('');
  });

  it('refuses a file:// URL at validation, before creating the output directory', async () => {
    const file = fx.listFile(['https://example.com/a.txt', 'file:///etc/passwd']);
    const out = join(fx.dir, 'out');

    const result = await runCli(['download-urls', '--file', file, '--out', out]);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `aws-msg: ${file}: /1: must be an absolute http:// or https:// URL (rule "pattern")\n`,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('names a missing list file', async () => {
    const result = await runCli(['download-urls', '--file', join(fx.dir, 'nope.json')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`aws-msg: ${join(fx.dir, 'nope.json')}: cannot read the file: no such file\n`);
  });
});

describe('runs', () => {
  it('exits 0 and prints the JSON summary alone on stdout', async () => {
    // Prepare
    fx.server.route('/a.bin', { body: testBytes(1000) });
    const file = fx.listFile([fx.server.url('/a.bin')]);

    // Act
    const result = await runCli(['download-urls', '--file', file, '--out', join(fx.dir, 'out'), '--json']);

    // Assess
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ total: 1, downloaded: 1, bytesReceived: 1000 });
    expect(result.stderr).toContain('downloads_finished');
  });

  it('reads its settings from the environment', async () => {
    // Prepare
    fx.server.route('/env.bin', { body: testBytes(10) });
    const file = fx.listFile([fx.server.url('/env.bin')]);

    // Act
    const result = await runCli(['download-urls'], {
      env: { DOWNLOAD_FILE: file, DOWNLOAD_OUT: join(fx.dir, 'from-env'), DOWNLOAD_QUIET: 'true' },
    });

    // Assess
    expect(result.code).toBe(0);
    expect(existsSync(join(fx.dir, 'from-env', 'env.bin'))).toBe(true);
    expect(result.stderr).toBe('');
  });

  it('exits 1 when some URLs fail', async () => {
    fx.server.route('/ok.bin', { body: testBytes(10) });
    const file = fx.listFile([fx.server.url('/ok.bin'), fx.server.url('/gone.bin')]);

    const result = await runCli(['download-urls', '--file', file, '--out', join(fx.dir, 'out'), '--quiet']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('download_failed');
  });

  it('sends input headers but never shows them in logs, errors or the report', async () => {
    // Prepare: one fx.server error and one cross-origin redirect, with debug logging on.
    const token = 'Bearer s3cr3t-t0ken-value-123';
    const other = await startFaultServer();
    try {
      fx.server.route('/private.bin', {
        faults: [{ kind: 'status', status: 500, body: `echo ${token}` }],
        body: testBytes(5),
      });
      fx.server.route('/moved', { redirectTo: other.url('/landing.bin') });
      other.route('/landing.bin', { body: testBytes(5) });
      const file = fx.listFile({
        defaults: { headers: { Authorization: token, 'X-Api-Key': 'key-abcdef-987654' } },
        urls: [fx.server.url('/private.bin'), fx.server.url('/moved'), fx.server.url('/missing')],
      });
      const report = join(fx.dir, 'report.json');

      // Act
      const result = await runCli(
        [
          'download-urls',
          '--file',
          file,
          '--out',
          join(fx.dir, 'out'),
          '--report',
          report,
          '--retries',
          '1',
          '--retry-delay',
          '1ms',
        ],
        { env: { LOG_LEVEL: 'debug' } },
      );

      // Assess
      expect(result.code).toBe(1);
      expect(fx.server.requests('/private.bin')[0]!.headers['authorization']).toBe(token);
      // Credentials do not follow a redirect to another origin.
      expect(other.requests('/landing.bin')[0]!.headers['authorization']).toBeUndefined();
      const everything = result.stdout + result.stderr + readFileSync(report, 'utf8');
      expect(everything).not.toContain('s3cr3t-t0ken');
      expect(everything).not.toContain('key-abcdef-987654');
    } finally {
      await other.close();
    }
  });
});
