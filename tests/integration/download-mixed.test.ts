/**
 * A long mixed list against two fault-injecting servers: the whole run must end with exactly the
 * right files on disk, nothing partial anywhere, every failure reported, and both caps respected.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normaliseUrlList } from '../../src/services/download/input.js';
import { downloadUrls } from '../../src/services/downloader-service.js';
import {
  ConcurrencyGauge,
  sha256Hex,
  startFaultServer,
  testBytes,
  type FaultServer,
  type Route,
} from '../helpers/http-fault-server.js';

let servers: FaultServer[];
let gauge: ConcurrencyGauge;
let dir: string;

beforeEach(async () => {
  gauge = new ConcurrencyGauge();
  servers = [await startFaultServer({ gauge }), await startFaultServer({ gauge })];
  dir = mkdtempSync(join(tmpdir(), 'aws-msg-mixed-'));
});

afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()));
  rmSync(dir, { recursive: true, force: true });
});

type Expect = { kind: 'ok'; name: string; body: Buffer } | { kind: 'fail'; reason: string };

it('downloads a mixed list of 330 URLs with the right outcome for each', async () => {
  // Prepare: 330 entries spread over two servers, with every kind of fault in between.
  const list: unknown[] = [];
  const expected: Expect[] = [];
  const add = (n: number, route: Route, outcome: 'ok' | string, entry: Record<string, unknown> = {}) => {
    const server = servers[n % 2] as FaultServer;
    const path = `/files/${n}.bin`;
    server.route(path, route);
    list.push({ url: server.url(path), ...entry });
    expected.push(
      outcome === 'ok'
        ? { kind: 'ok', name: `${n}.bin`, body: route.body as Buffer }
        : { kind: 'fail', reason: outcome },
    );
  };
  let n = 0;
  // Small files arrive slowly enough that many are in flight at once.
  for (let i = 0; i < 240; i++, n++) {
    add(n, { body: testBytes((n * 977) % 40_000, n), etag: `"${n}"`, delayMs: i % 3 }, 'ok');
  }
  for (let i = 0; i < 10; i++, n++) add(n, { body: testBytes(300_000 + n * 1000, n), etag: `"${n}"` }, 'ok');
  for (let i = 0; i < 15; i++, n++) {
    add(n, { body: testBytes(5000, n), faults: [{ kind: 'status', status: 503, retryAfter: '0' }] }, 'ok');
  }
  for (let i = 0; i < 15; i++, n++) {
    const size = i % 2 === 0 ? 20_000 : 400_000;
    add(
      n,
      { body: testBytes(size, n), etag: `"${n}"`, faults: [{ kind: 'reset', afterBytes: size / 2 }] },
      'ok',
    );
  }
  for (let i = 0; i < 10; i++, n++) {
    add(n, { body: testBytes(30_000, n), faults: [{ kind: 'truncate', afterBytes: 10_000 }] }, 'ok');
  }
  for (let i = 0; i < 10; i++, n++) {
    list.push(servers[n % 2]!.url(`/missing/${n}.bin`));
    expected.push({ kind: 'fail', reason: 'http_status' });
  }
  for (let i = 0; i < 10; i++, n++) {
    const body = testBytes(8000, n);
    add(n, { body }, 'ok', { sha256: sha256Hex(body) });
  }
  for (let i = 0; i < 10; i++, n++)
    add(n, { body: testBytes(8000, n) }, 'checksum_mismatch', { sha256: '0'.repeat(64) });
  for (let i = 0; i < 10; i++, n++) {
    const server = servers[n % 2] as FaultServer;
    const body = testBytes(3000, n);
    server.route(`/go/${n}`, { redirectTo: `/files/${n}.bin` });
    server.route(`/files/${n}.bin`, { body });
    list.push({ url: server.url(`/go/${n}`), filename: `${n}.bin` });
    expected.push({ kind: 'ok', name: `${n}.bin`, body });
  }
  expect(list.length).toBe(330);

  // Act
  const report = await downloadUrls(normaliseUrlList(list), {
    target: { kind: 'disk', dir },
    concurrency: 6,
    perHost: 4,
    retries: 2,
    retryDelayMs: 5,
    maxRetryWaitMs: 100,
    connectTimeoutMs: 2000,
    headersTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
    maxRedirects: 5,
    existing: 'skip',
  });

  // Assess: every entry has the outcome it should have, and the disk holds exactly the good files.
  expected.forEach((want, i) => {
    const got = report.results[i]!;
    if (want.kind === 'ok') {
      expect({ i, status: got.status }).toEqual({ i, status: 'downloaded' });
      expect(readFileSync(join(dir, want.name)).equals(want.body)).toBe(true);
      expect(got.sha256).toBe(sha256Hex(want.body));
    } else {
      expect({ i, status: got.status, reason: got.reason }).toEqual({
        i,
        status: 'failed',
        reason: want.reason,
      });
    }
  });
  const okNames = expected.flatMap((want) => (want.kind === 'ok' ? [want.name] : []));
  expect(readdirSync(dir).sort()).toEqual(['.aws-msg-manifest.json', ...okNames].sort());
  expect(report.summary).toMatchObject({ total: 330, downloaded: 310, failed: 20, skipped: 0 });
  // Requests, not sockets: a socket closed by a fault lingers on the server side for a moment
  // after the client already opened its replacement (the fault-free cap test counts sockets).
  for (const server of servers) expect(server.maxConcurrentRequests).toBeLessThanOrEqual(4);
  // The global cap holds across hosts, and was actually reached (both hosts in use at once).
  expect(gauge.max).toBe(6);
  const missing = servers.flatMap((server) =>
    server.requests().filter((r) => r.path.startsWith('/missing/')),
  );
  expect(missing).toHaveLength(10);
});
