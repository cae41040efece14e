/**
 * The CLI layer of download-urls, in-process: argv and environment in, exit code and output out.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { startFaultServer, testBytes, type FaultServer } from '../helpers/http-fault-server.js';

let server: FaultServer;
let dir: string;

beforeEach(async () => {
  server = await startFaultServer();
  dir = mkdtempSync(join(tmpdir(), 'aws-msg-cli-'));
});

afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function listFile(list: unknown): string {
  const path = join(dir, 'urls.json');
  writeFileSync(path, JSON.stringify(list));
  return path;
}

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
    const file = listFile(['https://example.com/a.txt', 'file:///etc/passwd']);
    const out = join(dir, 'out');

    const result = await runCli(['download-urls', '--file', file, '--out', out]);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `aws-msg: ${file}: /1: must be an absolute http:// or https:// URL (rule "pattern")\n`,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('names a missing list file', async () => {
    const result = await runCli(['download-urls', '--file', join(dir, 'nope.json')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`aws-msg: ${join(dir, 'nope.json')}: cannot read the file: no such file\n`);
  });
});

describe('runs', () => {
  it('exits 0 and prints the JSON summary alone on stdout', async () => {
    // Prepare
    server.route('/a.bin', { body: testBytes(1000) });
    const file = listFile([server.url('/a.bin')]);

    // Act
    const result = await runCli(['download-urls', '--file', file, '--out', join(dir, 'out'), '--json']);

    // Assess
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ total: 1, downloaded: 1, bytesReceived: 1000 });
    expect(result.stderr).toContain('downloads_finished');
  });

  it('reads its settings from the environment', async () => {
    // Prepare
    server.route('/env.bin', { body: testBytes(10) });
    const file = listFile([server.url('/env.bin')]);

    // Act
    const result = await runCli(['download-urls'], {
      env: { DOWNLOAD_FILE: file, DOWNLOAD_OUT: join(dir, 'from-env'), DOWNLOAD_QUIET: 'true' },
    });

    // Assess
    expect(result.code).toBe(0);
    expect(existsSync(join(dir, 'from-env', 'env.bin'))).toBe(true);
    expect(result.stderr).toBe('');
  });

  it('exits 1 when some URLs fail', async () => {
    server.route('/ok.bin', { body: testBytes(10) });
    const file = listFile([server.url('/ok.bin'), server.url('/gone.bin')]);

    const result = await runCli(['download-urls', '--file', file, '--out', join(dir, 'out'), '--quiet']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('download_failed');
  });

  it('sends input headers but never shows them in logs, errors or the report', async () => {
    // Prepare: one server error and one cross-origin redirect, with debug logging on.
    const token = 'Bearer s3cr3t-t0ken-value-123';
    const other = await startFaultServer();
    try {
      server.route('/private.bin', {
        faults: [{ kind: 'status', status: 500, body: `echo ${token}` }],
        body: testBytes(5),
      });
      server.route('/moved', { redirectTo: other.url('/landing.bin') });
      other.route('/landing.bin', { body: testBytes(5) });
      const file = listFile({
        defaults: { headers: { Authorization: token, 'X-Api-Key': 'key-abcdef-987654' } },
        urls: [server.url('/private.bin'), server.url('/moved'), server.url('/missing')],
      });
      const report = join(dir, 'report.json');

      // Act
      const result = await runCli(
        [
          'download-urls',
          '--file',
          file,
          '--out',
          join(dir, 'out'),
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
      expect(server.requests('/private.bin')[0]!.headers['authorization']).toBe(token);
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
