/**
 * The built binary (bin/aws-msg.js over dist/), run as a child process the way cron runs it,
 * against a local fault-injecting HTTP server.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnCli } from '../helpers/cli.js';
import { useDownloadFixture } from '../helpers/download-fixture.js';
import { sha256Hex, testBytes } from '../helpers/http-fault-server.js';

interface ReportFile {
  summary: Record<string, number>;
  results: Array<Record<string, unknown>>;
}

const fx = useDownloadFixture('aws-msg-e2e-dl-');

describe('aws-msg download-urls (built binary)', () => {
  it('exits 0, writes the files and a report entry per URL', async () => {
    // Prepare
    const a = testBytes(70_000, 1);
    const b = testBytes(400_000, 2);
    fx.server.route('/data/a.bin', { body: a });
    fx.server.route('/data/b.bin', { body: b, faults: [{ kind: 'status', status: 503, retryAfter: '0' }] });
    const file = fx.listFile([
      fx.server.url('/data/a.bin'),
      { url: fx.server.url('/data/b.bin'), filename: 'nested/b.bin', sha256: sha256Hex(b) },
    ]);
    const out = join(fx.dir, 'out');

    // Act
    const result = await spawnCli([
      'download-urls',
      '--file',
      file,
      '--out',
      out,
      '--report',
      join(fx.dir, 'report.json'),
      '--retry-delay',
      '10ms',
    ]).done;

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(readFileSync(join(out, 'a.bin')).equals(a)).toBe(true);
    expect(readFileSync(join(out, 'nested', 'b.bin')).equals(b)).toBe(true);
    const report = JSON.parse(readFileSync(join(fx.dir, 'report.json'), 'utf8')) as ReportFile;
    expect(report.summary).toMatchObject({ total: 2, downloaded: 2, failed: 0, httpRequests: 3, retries: 1 });
    expect(report.results).toEqual([
      expect.objectContaining({
        index: 0,
        url: fx.server.url('/data/a.bin'),
        status: 'downloaded',
        path: join(out, 'a.bin'),
        bytes: 70_000,
        sha256: sha256Hex(a),
        attempts: 1,
        error: null,
      }),
      expect.objectContaining({
        index: 1,
        status: 'downloaded',
        path: join(out, 'nested', 'b.bin'),
        bytes: 400_000,
        sha256: sha256Hex(b),
        attempts: 2,
        httpStatus: 200,
        error: null,
      }),
    ]);
    expect(typeof report.results[0]!['durationMs']).toBe('number');
  });

  it('exits 1 when a URL fails, and reports why', async () => {
    // Prepare
    fx.server.route('/ok.txt', { body: Buffer.from('ok') });
    const file = fx.listFile([fx.server.url('/ok.txt'), fx.server.url('/missing.txt')]);

    // Act
    const result = await spawnCli([
      'download-urls',
      '--file',
      file,
      '--out',
      join(fx.dir, 'out'),
      '--report',
      join(fx.dir, 'report.json'),
      '--json',
    ]).done;

    // Assess
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ total: 2, downloaded: 1, failed: 1 });
    const report = JSON.parse(readFileSync(join(fx.dir, 'report.json'), 'utf8')) as ReportFile;
    expect(report.results[1]).toMatchObject({
      status: 'failed',
      path: null,
      attempts: 1,
      httpStatus: 404,
      reason: 'http_status',
      error: 'HTTP 404',
    });
    expect(fx.server.requestCount('/missing.txt')).toBe(1);
    expect(readdirSync(join(fx.dir, 'out')).sort()).toEqual(['.aws-msg-manifest.json', 'ok.txt']);
  });

  it('exits 2 on a bad input file and downloads nothing', async () => {
    // Prepare
    fx.server.route('/a', { body: Buffer.from('a') });
    const file = fx.listFile({ urls: [fx.server.url('/a'), { url: 'file:///etc/passwd' }] });

    // Act
    const result = await spawnCli(['download-urls', '--file', file, '--out', join(fx.dir, 'out')]).done;

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      `aws-msg: ${file}: /urls/1/url: must be an absolute http:// or https:// URL (rule "pattern")`,
    ]);
    expect(fx.server.requestCount()).toBe(0);
    expect(existsSync(join(fx.dir, 'out'))).toBe(false);
  });

  it('on SIGINT finishes the downloads in flight, cancels the rest and exits 1', async () => {
    // Prepare: slow files, one at a time.
    const urls = [];
    for (let i = 0; i < 5; i++) {
      fx.server.route(`/slow${i}.bin`, { body: testBytes(50_000, i), chunkSize: 5000, chunkDelayMs: 100 });
      urls.push(fx.server.url(`/slow${i}.bin`));
    }
    const file = fx.listFile(urls);
    const report = join(fx.dir, 'report.json');
    const child = spawnCli([
      'download-urls',
      '--file',
      file,
      '--out',
      join(fx.dir, 'out'),
      '--concurrency',
      '1',
      '--report',
      report,
    ]);

    // Act
    while (fx.server.requestCount() === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill('SIGINT');
    const result = await child.done;

    // Assess
    expect(result.code).toBe(1);
    const parsed = JSON.parse(readFileSync(report, 'utf8')) as ReportFile;
    expect(parsed.results[0]).toMatchObject({ status: 'downloaded', bytes: 50_000 });
    expect(parsed.results.slice(1).map((r) => r['status'])).toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
      'cancelled',
    ]);
    expect(fx.server.requestCount()).toBe(1);
  });

  it('never splices the bytes of two URLs killed in turn under the same name', async () => {
    // Prepare: URL a (with an ETag) is killed mid-body, then URL b (no validator) under the same
    // name, after more bytes than a had; then a runs again.
    const a = testBytes(3_000_000, 30);
    const b = testBytes(3_000_000, 31);
    fx.server.route('/a.bin', {
      body: a,
      etag: '"a"',
      faults: [{ kind: 'stall', phase: 'body', afterBytes: 1_500_000 }],
    });
    fx.server.route('/b.bin', { body: b, faults: [{ kind: 'stall', phase: 'body', afterBytes: 2_500_000 }] });
    const out = join(fx.dir, 'out');
    const part = join(out, 'x.bin.part');
    /** Runs the list and kills the process (no cleanup) once the partial file holds `bytes` of `data`. */
    const killOnce = async (url: string, data: Buffer, bytes: number) => {
      const child = spawnCli([
        'download-urls',
        '--file',
        fx.listFile([{ url, filename: 'x.bin' }]),
        '--out',
        out,
      ]);
      const holds = () =>
        existsSync(part) &&
        statSync(part).size >= bytes &&
        readFileSync(part).subarray(0, 1024).equals(data.subarray(0, 1024));
      while (!holds()) await new Promise((resolve) => setTimeout(resolve, 20));
      child.kill('SIGKILL');
      await child.done;
    };
    await killOnce(fx.server.url('/a.bin'), a, 1024 * 1024);
    await killOnce(fx.server.url('/b.bin'), b, 2 * 1024 * 1024);

    // Act
    const result = await spawnCli([
      'download-urls',
      '--file',
      fx.listFile([{ url: fx.server.url('/a.bin'), filename: 'x.bin' }]),
      '--out',
      out,
    ]).done;

    // Assess: b's bytes were not taken for a's prefix.
    expect(result.code).toBe(0);
    expect(fx.server.requests('/a.bin').at(-1)!.headers['range']).toBeUndefined();
    expect(readFileSync(join(out, 'x.bin')).equals(a)).toBe(true);
  });
});
