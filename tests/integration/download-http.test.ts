/**
 * download-urls against a local HTTP server that injects faults. Each test prepares routes,
 * runs the real service (real undici Agent, real files in a temporary directory) and asserts what
 * a user would check: bytes on disk, what the server received, and the report.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normaliseUrlList } from '../../src/services/download/input.js';
import { downloadUrls, type DownloadOptions } from '../../src/services/downloader-service.js';
import { sha256Hex, startFaultServer, testBytes, type FaultServer } from '../helpers/http-fault-server.js';

let server: FaultServer;
let dir: string;
let out: string;

beforeEach(async () => {
  server = await startFaultServer();
  dir = mkdtempSync(join(tmpdir(), 'aws-msg-dl-'));
  out = join(dir, 'out');
});

afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function options(overrides: Partial<DownloadOptions> = {}): DownloadOptions {
  return {
    target: { kind: 'disk', dir: out },
    concurrency: 8,
    perHost: 8,
    retries: 3,
    retryDelayMs: 10,
    maxRetryWaitMs: 2000,
    connectTimeoutMs: 2000,
    headersTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
    maxRedirects: 5,
    existing: 'skip',
    ...overrides,
  };
}

function run(list: unknown, overrides: Partial<DownloadOptions> = {}) {
  return downloadUrls(normaliseUrlList(list), options(overrides));
}

/** Every file under `root`, relative, sorted. */
function files(root: string): string[] {
  if (!existsSync(root)) return [];
  return (readdirSync(root, { recursive: true }) as string[])
    .filter((name) => statSync(join(root, name)).isFile())
    .map((name) => name.split('\\').join('/'))
    .sort();
}

describe('retries', () => {
  it('waits for Retry-After on a 503, then retries and succeeds', async () => {
    // Prepare
    const body = testBytes(10_000, 1);
    server.route('/busy.bin', { body, faults: [{ kind: 'status', status: 503, retryAfter: '1' }] });

    // Act
    const report = await run([server.url('/busy.bin')]);

    // Assess
    const [first, second] = server.requests('/busy.bin');
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);
    expect(readFileSync(join(out, 'busy.bin')).equals(body)).toBe(true);
    expect(report.results[0]).toMatchObject({ status: 'downloaded', attempts: 2, httpStatus: 200 });
  });

  it('caps a long Retry-After at --max-retry-wait', async () => {
    // Prepare
    server.route('/slow-down', {
      body: testBytes(100),
      faults: [{ kind: 'status', status: 429, retryAfter: '3600' }],
    });

    // Act
    const started = Date.now();
    const report = await run([server.url('/slow-down')], { maxRetryWaitMs: 100 });

    // Assess
    expect(Date.now() - started).toBeLessThan(2000);
    expect(report.results[0]).toMatchObject({ status: 'downloaded', attempts: 2 });
  });

  it('fails a 404 at once, with exactly one request', async () => {
    // Act
    const report = await run([server.url('/missing.bin')]);

    // Assess
    expect(server.requestCount('/missing.bin')).toBe(1);
    expect(report.results[0]).toMatchObject({
      status: 'failed',
      reason: 'http_status',
      httpStatus: 404,
      attempts: 1,
    });
    expect(files(out)).toEqual([]);
  });

  it('gives up after --retries on a server that keeps failing, leaving nothing behind', async () => {
    // Prepare
    const faults = Array.from({ length: 10 }, () => ({ kind: 'status' as const, status: 500 }));
    server.route('/broken', { body: testBytes(10), faults });

    // Act
    const report = await run([server.url('/broken')], { retries: 2 });

    // Assess
    expect(server.requestCount('/broken')).toBe(3);
    expect(report.results[0]).toMatchObject({ status: 'failed', attempts: 3, httpStatus: 500 });
    expect(files(out)).toEqual([]);
  });
});

describe('interrupted transfers', () => {
  it('resumes after a reset in the middle of the body and ends byte-identical', async () => {
    // Prepare
    const body = testBytes(900_000, 2);
    server.route('/big.bin', { body, etag: '"v1"', faults: [{ kind: 'reset', afterBytes: 120_000 }] });

    // Act
    const report = await run([server.url('/big.bin')]);

    // Assess
    const [, retry] = server.requests('/big.bin');
    expect(retry!.headers['range']).toMatch(/^bytes=\d+-$/);
    expect(retry!.headers['if-range']).toBe('"v1"');
    expect(readFileSync(join(out, 'big.bin')).equals(body)).toBe(true);
    expect(report.results[0]!.resumedFromBytes).toBeGreaterThan(0);
    expect(report.results[0]!.sha256).toBe(sha256Hex(body));
    expect(files(out)).toEqual(['.aws-msg-manifest.json', 'big.bin']);
  });

  it('retries a truncated body and never keeps it under the final name', async () => {
    // Prepare
    const body = testBytes(50_000, 3);
    server.route('/short.bin', {
      body,
      faults: Array.from({ length: 4 }, () => ({ kind: 'truncate' as const, afterBytes: 20_000 })),
    });

    // Act
    const report = await run([server.url('/short.bin')], { retries: 3 });

    // Assess
    expect(server.requestCount('/short.bin')).toBe(4);
    expect(report.results[0]).toMatchObject({ status: 'failed', path: null });
    expect(existsSync(join(out, 'short.bin'))).toBe(false);
  });

  it('restarts cleanly when the server ignores the range', async () => {
    // Prepare
    const body = testBytes(700_000, 4);
    server.route('/norange.bin', {
      body,
      etag: '"n1"',
      faults: [{ kind: 'reset', afterBytes: 300_000 }, { kind: 'ignore-range' }],
    });

    // Act
    const report = await run([server.url('/norange.bin')]);

    // Assess
    expect(server.requests('/norange.bin')[1]!.headers['range']).toBeDefined();
    expect(readFileSync(join(out, 'norange.bin')).equals(body)).toBe(true);
    expect(report.results[0]).toMatchObject({ status: 'downloaded', resumedFromBytes: 0, attempts: 2 });
  });

  it('times out a server that never answers', async () => {
    // Prepare
    server.route('/stall', { body: testBytes(10), faults: [{ kind: 'stall', phase: 'headers' }] });

    // Act
    const report = await run([server.url('/stall')], { headersTimeoutMs: 300, retries: 0 });

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'failed', reason: 'timeout' });
    expect(files(out)).toEqual([]);
  });

  it('times out a body that stalls, then resumes it on the retry', async () => {
    // Prepare
    const body = testBytes(600_000, 5);
    server.route('/stall-body', {
      body,
      lastModified: 'Wed, 21 Oct 2015 07:28:00 GMT',
      faults: [{ kind: 'stall', phase: 'body', afterBytes: 300_000 }],
    });

    // Act
    const report = await run([server.url('/stall-body')], { bodyTimeoutMs: 300 });

    // Assess
    expect(server.requests('/stall-body')[1]!.headers['if-range']).toBe('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(readFileSync(join(out, 'stall-body')).equals(body)).toBe(true);
    expect(report.results[0]).toMatchObject({ status: 'downloaded', attempts: 2 });
  });
});

describe('redirects', () => {
  it('follows a redirect chain', async () => {
    // Prepare
    const body = testBytes(1000, 6);
    server.route('/r1', { redirectTo: '/r2', redirectStatus: 301 });
    server.route('/r2', { redirectTo: server.url('/r3'), redirectStatus: 307 });
    server.route('/r3', { redirectTo: '/final.txt' });
    server.route('/final.txt', { body });

    // Act
    const report = await run([{ url: server.url('/r1'), filename: 'final.txt' }]);

    // Assess
    expect(readFileSync(join(out, 'final.txt')).equals(body)).toBe(true);
    expect(report.results[0]).toMatchObject({ status: 'downloaded', attempts: 1 });
  });

  it('fails a redirect loop without retrying it', async () => {
    // Prepare
    server.route('/loop-a', { redirectTo: '/loop-b' });
    server.route('/loop-b', { redirectTo: '/loop-a' });

    // Act
    const report = await run([server.url('/loop-a')]);

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'failed', reason: 'redirect_loop', attempts: 1 });
    expect(server.requestCount()).toBeLessThanOrEqual(3);
    expect(files(out)).toEqual([]);
  });

  it('fails a chain longer than --max-redirects', async () => {
    // Prepare
    for (let i = 0; i < 6; i++) server.route(`/hop${i}`, { redirectTo: `/hop${i + 1}` });
    server.route('/hop6', { body: testBytes(10) });

    // Act
    const report = await run([server.url('/hop0')], { maxRedirects: 3 });

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'failed', reason: 'too_many_redirects' });
    expect(server.requestCount('/hop6')).toBe(0);
  });
});

describe('verification and limits', () => {
  it('deletes a download whose SHA-256 does not match and does not retry it', async () => {
    // Prepare
    const body = testBytes(40_000, 7);
    server.route('/tampered.bin', { body, etag: '"t"' });

    // Act
    const report = await run([{ url: server.url('/tampered.bin'), sha256: 'ab'.repeat(32) }]);

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'failed', reason: 'checksum_mismatch', attempts: 1 });
    expect(files(out)).toEqual([]);
  });

  it('keeps a download whose SHA-256 matches', async () => {
    // Prepare
    const body = testBytes(40_000, 8);
    server.route('/good.bin', { body });

    // Act
    const report = await run([{ url: server.url('/good.bin'), sha256: sha256Hex(body).toUpperCase() }]);

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'downloaded', sha256: sha256Hex(body) });
  });

  it('refuses a body whose Content-Length exceeds --max-bytes without reading it', async () => {
    // Prepare
    server.route('/huge.bin', { body: testBytes(500_000) });

    // Act
    const report = await run([server.url('/huge.bin')], { maxBytes: 100_000 });

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'failed', reason: 'too_large', attempts: 1 });
    expect(files(out)).toEqual([]);
  });

  it('aborts mid-transfer when a body without Content-Length passes the entry maxBytes', async () => {
    // Prepare
    server.route('/stream', { body: testBytes(400_000), chunked: true, chunkSize: 16_384 });

    // Act
    const report = await run([{ url: server.url('/stream'), maxBytes: 50_000 }], { maxBytes: 10_000_000 });

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'failed', reason: 'too_large' });
    expect(report.summary.bytesReceived).toBeLessThan(400_000);
    expect(files(out)).toEqual([]);
  });
});

describe('large bodies (written through the thread pool, hashed on a worker)', () => {
  it('downloads several large bodies at once, byte-identical, each with its own SHA-256', async () => {
    // Prepare: more bytes than the write and hash queues hold, one of them of unknown length.
    const bodies = [testBytes(12_000_000, 21), testBytes(9_000_001, 22), testBytes(7_500_000, 23)];
    server.route('/l0.bin', { body: bodies[0] });
    server.route('/l1.bin', { body: bodies[1] });
    server.route('/l2.bin', { body: bodies[2], chunked: true, chunkSize: 50_000 });

    // Act
    const report = await run([
      server.url('/l0.bin'),
      { url: server.url('/l1.bin'), sha256: sha256Hex(bodies[1]!) },
      server.url('/l2.bin'),
    ]);

    // Assess
    bodies.forEach((body, i) => {
      expect(readFileSync(join(out, `l${i}.bin`)).equals(body)).toBe(true);
      expect(report.results[i]).toMatchObject({
        status: 'downloaded',
        bytes: body.length,
        sha256: sha256Hex(body),
      });
    });
  });

  it('fails a large body whose SHA-256 does not match, and leaves nothing', async () => {
    server.route('/bad-large.bin', { body: testBytes(3_000_000, 24) });
    const report = await run([{ url: server.url('/bad-large.bin'), sha256: 'ab'.repeat(32) }]);
    expect(report.results[0]).toMatchObject({ status: 'failed', reason: 'checksum_mismatch', attempts: 1 });
    expect(files(out)).toEqual([]);
  });

  it('reports no SHA-256 with --hash expected when none was asked for', async () => {
    const body = testBytes(2_000_000, 25);
    server.route('/plain.bin', { body });
    const report = await run([server.url('/plain.bin')], { hash: 'expected' });
    expect(readFileSync(join(out, 'plain.bin')).equals(body)).toBe(true);
    expect(report.results[0]).toMatchObject({ status: 'downloaded', sha256: null });
  });
});

describe('names', () => {
  it('keeps ../../etc/passwd names inside --out', async () => {
    // Prepare
    server.route('/a', { body: Buffer.from('from filename') });
    server.route('/b', {
      body: Buffer.from('from header'),
      contentDisposition: 'attachment; filename="../../evil.sh"',
    });
    server.route('/%2E%2E%2F%2E%2E%2Fescape', { body: Buffer.from('from url') });

    // Act
    const report = await run([
      { url: server.url('/a'), filename: '../../etc/passwd' },
      server.url('/b'),
      server.url('/%2E%2E%2F%2E%2E%2Fescape'),
    ]);

    // Assess
    expect(report.summary.downloaded).toBe(3);
    expect(files(out)).toEqual(['.aws-msg-manifest.json', 'escape', 'etc/passwd', 'evil.sh']);
    expect(readdirSync(dir)).toEqual(['out']);
  });

  it('refuses to write through a symlinked subdirectory that leads outside --out', async () => {
    // Prepare
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    mkdirOut();
    symlinkSync(elsewhere, join(out, 'link'));
    server.route('/x', { body: Buffer.from('x') });

    // Act
    const report = await run([{ url: server.url('/x'), filename: 'link/x.txt' }]);

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'failed', reason: 'write_failed' });
    expect(report.results[0]!.error).toContain('outside the destination');
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('resolves collisions in list order and reports them', async () => {
    // Prepare
    server.route('/x/data.csv', { body: Buffer.from('x') });
    server.route('/y/data.csv', { body: Buffer.from('y') });
    server.route('/z/data.csv', { body: Buffer.from('z') });

    // Act
    const report = await run(
      [server.url('/x/data.csv'), server.url('/y/data.csv'), server.url('/z/data.csv')],
      {
        concurrency: 3,
      },
    );

    // Assess
    expect(readFileSync(join(out, 'data.csv'), 'utf8')).toBe('x');
    expect(readFileSync(join(out, 'data-2.csv'), 'utf8')).toBe('y');
    expect(readFileSync(join(out, 'data-3.csv'), 'utf8')).toBe('z');
    expect(report.results.map((r) => r.renamedFrom)).toEqual([null, 'data.csv', 'data.csv']);
    expect(report.summary.renamed).toBe(2);
  });

  it('reports a file and a directory of the same name as a collision, not a write failure', async () => {
    // Prepare
    server.route('/1', { body: Buffer.from('one') });
    server.route('/2', { body: Buffer.from('two') });

    // Act
    const report = await run([
      { url: server.url('/1'), filename: 'a' },
      { url: server.url('/2'), filename: 'a/b' },
    ]);

    // Assess
    expect(report.results.map((r) => r.status)).toEqual(['downloaded', 'downloaded']);
    expect(readFileSync(join(out, 'a'), 'utf8')).toBe('one');
    expect(readFileSync(join(out, 'a-2', 'b'), 'utf8')).toBe('two');
    expect(report.results[1]!.renamedFrom).toBe('a/b');
  });

  it('gives a header-named entry its own numbered name back, not a new one', async () => {
    // Prepare: the second entry is planned as file-2.bin; its header then asks for file.bin.
    server.route('/x/file.bin', { body: Buffer.from('x') });
    server.route('/y/file.bin', {
      body: Buffer.from('y'),
      contentDisposition: 'attachment; filename="file.bin"',
    });

    // Act
    const report = await run([server.url('/x/file.bin'), server.url('/y/file.bin')]);

    // Assess
    expect(files(out)).toEqual(['.aws-msg-manifest.json', 'file-2.bin', 'file.bin']);
    expect(readFileSync(join(out, 'file-2.bin'), 'utf8')).toBe('y');
    expect(report.results[1]!.renamedFrom).toBe('file.bin');
  });

  it('names a file from Content-Disposition (filename* wins)', async () => {
    // Prepare
    server.route('/export', {
      body: Buffer.from('report'),
      contentDisposition: `attachment; filename="fallback.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`,
    });

    // Act
    await run([server.url('/export')]);

    // Assess
    expect(readFileSync(join(out, 'résumé.pdf'), 'utf8')).toBe('report');
  });
});

describe('concurrency', () => {
  it('never opens more than --per-host connections to one server', async () => {
    // Prepare
    const list = [];
    for (let i = 0; i < 30; i++) {
      server.route(`/f${i}`, { body: testBytes(2000, i), delayMs: 30 });
      list.push(server.url(`/f${i}`));
    }

    // Act
    const report = await run(list, { concurrency: 20, perHost: 3 });

    // Assess
    expect(report.summary.downloaded).toBe(30);
    expect(server.maxConcurrentConnections).toBe(3);
    expect(server.maxConcurrentRequests).toBe(3);
  });

  it('reuses keep-alive connections across files', async () => {
    // Prepare
    const list = [];
    for (let i = 0; i < 40; i++) {
      server.route(`/k${i}`, { body: testBytes(1000, i) });
      list.push(server.url(`/k${i}`));
    }

    // Act
    await run(list, { concurrency: 4, perHost: 4 });

    // Assess
    expect(server.connectionsOpened).toBeLessThanOrEqual(4);
  });
});

describe('re-runs', () => {
  it('skips existing files on a re-run without asking the server', async () => {
    // Prepare
    server.route('/one.txt', { body: Buffer.from('one') });
    await run([server.url('/one.txt')]);
    server.resetStats();

    // Act
    const report = await run([server.url('/one.txt')]);

    // Assess
    expect(server.requestCount()).toBe(0);
    expect(report.results[0]).toMatchObject({ status: 'skipped', bytes: 3, note: 'already exists' });
  });

  it('skips a file that exists without a manifest after reading only the headers', async () => {
    // Prepare
    mkdirOut();
    writeFileSync(join(out, 'old.txt'), 'keep me');
    server.route('/old.txt', { body: Buffer.from('new content') });

    // Act
    const report = await run([server.url('/old.txt')]);

    // Assess
    expect(readFileSync(join(out, 'old.txt'), 'utf8')).toBe('keep me');
    expect(report.results[0]).toMatchObject({ status: 'skipped', attempts: 1 });
  });

  it('replaces existing files with --overwrite', async () => {
    // Prepare
    mkdirOut();
    writeFileSync(join(out, 'old.txt'), 'stale');
    server.route('/old.txt', { body: Buffer.from('fresh') });

    // Act
    const report = await run([server.url('/old.txt')], { existing: 'overwrite' });

    // Assess
    expect(readFileSync(join(out, 'old.txt'), 'utf8')).toBe('fresh');
    expect(report.results[0]!.status).toBe('downloaded');
  });

  it('--if-changed sends a conditional request and counts a 304 as success', async () => {
    // Prepare
    server.route('/feed.xml', { body: Buffer.from('<v1/>'), etag: '"e1"' });
    await run([server.url('/feed.xml')], { existing: 'if-changed' });
    const before = statSync(join(out, 'feed.xml')).mtimeMs;
    server.resetStats();

    // Act
    const report = await run([server.url('/feed.xml')], { existing: 'if-changed' });

    // Assess
    expect(server.requests('/feed.xml')[0]!.headers['if-none-match']).toBe('"e1"');
    expect(report.results[0]).toMatchObject({ status: 'unchanged', httpStatus: 304, bytes: 5 });
    expect(statSync(join(out, 'feed.xml')).mtimeMs).toBe(before);
    expect(report.summary.failed).toBe(0);
  });

  it('--if-changed downloads again when the server has a new version', async () => {
    // Prepare
    server.route('/feed.xml', { body: Buffer.from('<v1/>'), lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT' });
    await run([server.url('/feed.xml')], { existing: 'if-changed' });
    server.route('/feed.xml', { body: Buffer.from('<v2/>'), lastModified: 'Tue, 02 Jan 2024 00:00:00 GMT' });
    server.resetStats();

    // Act
    const report = await run([server.url('/feed.xml')], { existing: 'if-changed' });

    // Assess
    expect(server.requests('/feed.xml')[0]!.headers['if-modified-since']).toBe(
      'Mon, 01 Jan 2024 00:00:00 GMT',
    );
    expect(readFileSync(join(out, 'feed.xml'), 'utf8')).toBe('<v2/>');
    expect(report.results[0]!.status).toBe('downloaded');
  });

  it('resumes a partial file left by an earlier run', async () => {
    // Prepare: the first run dies mid-body and keeps the resumable part.
    const body = testBytes(2_000_000, 9);
    server.route('/iso.img', { body, etag: '"iso"', faults: [{ kind: 'reset', afterBytes: 1_200_000 }] });
    const first = await run([server.url('/iso.img')], { retries: 0 });
    expect(first.results[0]!.status).toBe('failed');
    expect(files(out)).toEqual(['iso.img.part', 'iso.img.part.json']);
    server.resetStats();

    // Act
    const second = await run([server.url('/iso.img')]);

    // Assess
    expect(server.requests('/iso.img')[0]!.headers['range']).toMatch(/^bytes=\d+-$/);
    expect(readFileSync(join(out, 'iso.img')).equals(body)).toBe(true);
    expect(second.results[0]).toMatchObject({ status: 'downloaded', sha256: sha256Hex(body) });
    expect(second.results[0]!.resumedFromBytes).toBeGreaterThan(0);
    expect(files(out)).toEqual(['.aws-msg-manifest.json', 'iso.img']);
  });

  it('starts over when the resource changed since the partial download', async () => {
    // Prepare
    server.route('/doc.pdf', {
      body: testBytes(500_000, 10),
      etag: '"old"',
      faults: [{ kind: 'reset', afterBytes: 200_000 }],
    });
    await run([server.url('/doc.pdf')], { retries: 0 });
    const fresh = testBytes(450_000, 11);
    server.route('/doc.pdf', { body: fresh, etag: '"new"' });

    // Act
    const report = await run([server.url('/doc.pdf')]);

    // Assess
    expect(server.requests('/doc.pdf').at(-1)!.headers['if-range']).toBe('"old"');
    expect(readFileSync(join(out, 'doc.pdf')).equals(fresh)).toBe(true);
    expect(report.results[0]!.resumedFromBytes).toBe(0);
    expect(files(out)).toEqual(['.aws-msg-manifest.json', 'doc.pdf']);
  });

  it('starts over in the same attempt when a 206 is of another version than the partial file', async () => {
    // Prepare: a partial of version "v1"; then a cache answers the range with bytes of "v2".
    server.route('/feed.bin', {
      body: testBytes(2_000_000, 20),
      etag: '"v1"',
      faults: [{ kind: 'reset', afterBytes: 1_200_000 }],
    });
    await run([server.url('/feed.bin')], { retries: 0 });
    const fresh = testBytes(2_000_000, 21);
    server.route('/feed.bin', { body: fresh, etag: '"v2"', faults: [{ kind: 'ignore-if-range' }] });
    server.resetStats();

    // Act
    const report = await run([server.url('/feed.bin')], { retries: 0 });

    // Assess
    const [resume, restart] = server.requests('/feed.bin');
    expect(resume!.headers['if-range']).toBe('"v1"');
    expect(restart!.headers['range']).toBeUndefined();
    expect(readFileSync(join(out, 'feed.bin')).equals(fresh)).toBe(true);
    expect(report.results[0]).toMatchObject({
      status: 'downloaded',
      attempts: 1,
      sha256: sha256Hex(fresh),
      resumedFromBytes: 0,
    });
    expect(files(out)).toEqual(['.aws-msg-manifest.json', 'feed.bin']);
  });

  it('never skips a new URL with the file the manifest gives to another URL', async () => {
    // Prepare: run 1 saves /a/data.csv as data.csv.
    const a = testBytes(1000, 22);
    const b = testBytes(2000, 23);
    server.route('/a/data.csv', { body: a, etag: '"a"' });
    server.route('/b/data.csv', { body: b, etag: '"b"' });
    await run([server.url('/a/data.csv')]);
    server.resetStats();

    // Act: the new URL comes first in the list.
    const report = await run([server.url('/b/data.csv'), server.url('/a/data.csv')]);

    // Assess: a keeps its name and is skipped without a request; b gets a name of its own.
    expect(report.results.map((r) => [r.status, r.path])).toEqual([
      ['downloaded', join(out, 'data-2.csv')],
      ['skipped', join(out, 'data.csv')],
    ]);
    expect(readFileSync(join(out, 'data.csv')).equals(a)).toBe(true);
    expect(readFileSync(join(out, 'data-2.csv')).equals(b)).toBe(true);
    expect(server.requestCount('/a/data.csv')).toBe(0);
  });

  it('replaces, rather than skips, a file the manifest gives to a URL not in the list', async () => {
    // Prepare
    const a = testBytes(1000, 24);
    const b = testBytes(2000, 25);
    server.route('/a/data.csv', { body: a });
    server.route('/b/data.csv', { body: b });
    await run([server.url('/a/data.csv')]);

    // Act
    const report = await run([server.url('/b/data.csv')]);
    const again = await run([server.url('/b/data.csv')]);

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'downloaded', path: join(out, 'data.csv') });
    expect(readFileSync(join(out, 'data.csv')).equals(b)).toBe(true);
    expect(again.results[0]).toMatchObject({ status: 'skipped', sha256: sha256Hex(b) });
  });

  it('keeps URLs that differ only in a masked secret apart', async () => {
    // Prepare
    server.route('/dl', { body: Buffer.from('same path, two resources') });
    const list = [server.url('/dl?token=AAAA1111'), server.url('/dl?token=BBBB2222')];
    await run(list);
    server.resetStats();

    // Act
    const report = await run(list);

    // Assess: each URL finds its own record, so both are skipped without a request.
    expect(report.results.map((r) => [r.status, r.path])).toEqual([
      ['skipped', join(out, 'dl')],
      ['skipped', join(out, 'dl-2')],
    ]);
    expect(server.requestCount()).toBe(0);
    expect(files(out)).toEqual(['.aws-msg-manifest.json', 'dl', 'dl-2']);
    const manifest = readFileSync(join(out, '.aws-msg-manifest.json'), 'utf8');
    expect(manifest).not.toMatch(/AAAA1111|BBBB2222/);
  });

  it('starts over when the server answers 416 to the resume range', async () => {
    // Prepare: a partial file longer than what the server now has under the same validator.
    server.route('/log.txt', {
      body: testBytes(900_000, 12),
      etag: '"same"',
      faults: [{ kind: 'reset', afterBytes: 600_000 }],
    });
    await run([server.url('/log.txt')], { retries: 0 });
    const shorter = testBytes(300_000, 13);
    server.route('/log.txt', { body: shorter, etag: '"same"' });
    server.resetStats();

    // Act
    const report = await run([server.url('/log.txt')]);

    // Assess
    expect(server.requests('/log.txt').map((r) => r.headers['range'] !== undefined)).toEqual([true, false]);
    expect(readFileSync(join(out, 'log.txt')).equals(shorter)).toBe(true);
    // Not a transient failure: the restart does not use up a retry.
    expect(report.results[0]).toMatchObject({ status: 'downloaded', attempts: 1 });
    expect(files(out)).toEqual(['.aws-msg-manifest.json', 'log.txt']);
  });

  it('restarts a small file from zero after a reset and keeps nothing partial', async () => {
    // Prepare
    const body = testBytes(30_000, 14);
    server.route('/small.bin', { body, etag: '"s"', faults: [{ kind: 'reset', afterBytes: 10_000 }] });

    // Act
    const report = await run([server.url('/small.bin')]);

    // Assess
    expect(server.requests('/small.bin')[1]!.headers['range']).toBeUndefined();
    expect(readFileSync(join(out, 'small.bin')).equals(body)).toBe(true);
    expect(report.results[0]).toMatchObject({ status: 'downloaded', attempts: 2 });
    expect(files(out)).toEqual(['.aws-msg-manifest.json', 'small.bin']);
  });
});

function mkdirOut(): void {
  mkdirSync(out, { recursive: true });
}
