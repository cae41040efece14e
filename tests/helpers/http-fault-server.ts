/**
 * A local HTTP server for download tests that injects the faults real servers produce: 503 with
 * Retry-After, a connection reset in the middle of a body, a truncated body, a stall before the
 * headers or inside the body, redirect chains and loops, and a server that ignores Range. It
 * serves Range / If-Range, ETag / Last-Modified, 304 and Content-Disposition like a real one, and
 * it records every request and the peak number of concurrent connections.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** A fault consumed by one request; the next request gets the next fault, then normal service. */
export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  /** Sends the headers of a full response, then `afterBytes` of the body, then resets the socket. */
  | { kind: 'reset'; afterBytes: number }
  /** Like reset, but closes the socket cleanly (FIN): the body is shorter than Content-Length. */
  | { kind: 'truncate'; afterBytes: number }
  /** Never answers (headers) or stops sending after `afterBytes` (body). */
  | { kind: 'stall'; phase: 'headers' | 'body'; afterBytes?: number }
  /** Answers 200 with the whole body even when a Range was asked for. */
  | { kind: 'ignore-range' }
  /** Answers a Range with 206 whatever If-Range says (a cache that does not check it). */
  | { kind: 'ignore-if-range' };

export interface Route {
  /** The resource served with 200/206. Ignored by redirect routes. */
  body?: Buffer;
  status?: number;
  headers?: Record<string, string>;
  etag?: string;
  lastModified?: string;
  /** Default true. */
  acceptRanges?: boolean;
  contentDisposition?: string;
  /** Answers 302 (or `redirectStatus`) to this path or absolute URL. */
  redirectTo?: string;
  redirectStatus?: number;
  /** Faults for the first requests, in order. */
  faults?: Fault[];
  /** Omits Content-Length (chunked transfer encoding), so the size is unknown until the end. */
  chunked?: boolean;
  /** Sends the body in chunks of this size with `chunkDelayMs` between them (slow transfers). */
  chunkSize?: number;
  chunkDelayMs?: number;
  /** Waits this long before answering (keeps requests in flight to measure concurrency). */
  delayMs?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  at: number;
}

export interface FaultServer {
  readonly origin: string;
  url(path: string): string;
  route(path: string, route: Route): void;
  requests(path?: string): RecordedRequest[];
  requestCount(path?: string): number;
  /** Peak number of TCP connections open at the same time. */
  readonly maxConcurrentConnections: number;
  /** Peak number of requests being answered at the same time. */
  readonly maxConcurrentRequests: number;
  readonly connectionsOpened: number;
  resetStats(): void;
  close(): Promise<void>;
}

/** Deterministic pseudo-random bytes, so contents differ per seed and checksums are meaningful. */
export function testBytes(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function parseRange(value: string | undefined, size: number): { start: number; end: number } | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(value ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  return { start, end };
}

/** Counts requests in progress across several servers (for a global concurrency cap). */
export class ConcurrencyGauge {
  active = 0;
  max = 0;

  enter(): void {
    this.active++;
    this.max = Math.max(this.max, this.active);
  }

  leave(): void {
    this.active--;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startFaultServer(options: { gauge?: ConcurrencyGauge } = {}): Promise<FaultServer> {
  const routes = new Map<string, Route>();
  const recorded: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let openConnections = 0;
  let maxConnections = 0;
  let connectionsOpened = 0;
  let activeRequests = 0;
  let maxRequests = 0;

  async function writeSlowly(res: ServerResponse, data: Buffer, route: Route): Promise<void> {
    const size = route.chunkSize ?? data.length;
    for (let offset = 0; offset < data.length; offset += size) {
      if (res.destroyed) return;
      const ok = res.write(data.subarray(offset, offset + size));
      if (!ok) await new Promise((resolve) => res.once('drain', resolve));
      if (route.chunkDelayMs) await sleep(route.chunkDelayMs);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    recorded.push({ method: req.method ?? 'GET', path, headers: req.headers, at: Date.now() });
    const route = routes.get(path);
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    if (route.delayMs) await sleep(route.delayMs);
    const fault = route.faults?.shift();

    if (route.redirectTo !== undefined) {
      res.writeHead(route.redirectStatus ?? 302, { location: route.redirectTo }).end();
      return;
    }
    if (fault?.kind === 'status') {
      const headers: Record<string, string> = { 'content-type': 'text/plain' };
      if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
      res.writeHead(fault.status, headers).end(fault.body ?? `injected ${fault.status}`);
      return;
    }
    if (fault?.kind === 'stall' && fault.phase === 'headers') return; // never answers

    const body = route.body ?? Buffer.alloc(0);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', ...route.headers };
    if (route.etag) headers['etag'] = route.etag;
    if (route.lastModified) headers['last-modified'] = route.lastModified;
    if (route.contentDisposition) headers['content-disposition'] = route.contentDisposition;
    if (route.acceptRanges !== false) headers['accept-ranges'] = 'bytes';

    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    if ((route.etag && inm === route.etag) || (!inm && route.lastModified && ims === route.lastModified)) {
      res.writeHead(304, headers).end();
      return;
    }

    let status = route.status ?? 200;
    let payload = body;
    const rangeHeader = req.headers['range'];
    const ifRange = req.headers['if-range'];
    const rangeAllowed =
      route.acceptRanges !== false &&
      fault?.kind !== 'ignore-range' &&
      (ifRange === undefined ||
        ifRange === route.etag ||
        ifRange === route.lastModified ||
        fault?.kind === 'ignore-if-range');
    if (rangeHeader !== undefined && rangeAllowed) {
      const range = parseRange(rangeHeader, body.length);
      if (!range || range.start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      status = 206;
      payload = body.subarray(range.start, range.end + 1);
      headers['content-range'] = `bytes ${range.start}-${range.end}/${body.length}`;
    }
    if (!route.chunked) headers['content-length'] = String(payload.length);
    res.writeHead(status, headers);
    res.flushHeaders();

    if (fault?.kind === 'reset' || fault?.kind === 'truncate' || fault?.kind === 'stall') {
      const cut = Math.min(fault.afterBytes ?? 0, payload.length);
      await writeSlowly(res, payload.subarray(0, cut), route);
      // Give the bytes time to leave before the socket goes away.
      await sleep(20);
      if (fault.kind === 'reset') res.socket?.resetAndDestroy();
      else if (fault.kind === 'truncate') res.socket?.end();
      return; // stall: never finishes
    }
    await writeSlowly(res, payload, route);
    res.end();
  }

  const server: Server = createServer((req, res) => {
    activeRequests++;
    maxRequests = Math.max(maxRequests, activeRequests);
    options.gauge?.enter();
    let counted = true;
    const done = () => {
      if (counted) {
        activeRequests--;
        options.gauge?.leave();
      }
      counted = false;
    };
    // 'finish' (all bytes handed to the kernel) comes before the client can see the end, so a
    // client that starts its next request right away is never counted twice; 'close' covers errors.
    res.once('finish', done);
    res.once('close', done);
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    connectionsOpened++;
    openConnections++;
    maxConnections = Math.max(maxConnections, openConnections);
    socket.once('close', () => {
      sockets.delete(socket);
      openConnections--;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const origin = `http://127.0.0.1:${address.port}`;

  return {
    origin,
    url: (path) => `${origin}${path}`,
    route: (path, route) => void routes.set(path, route),
    requests: (path) => (path === undefined ? [...recorded] : recorded.filter((r) => r.path === path)),
    requestCount: (path) =>
      path === undefined ? recorded.length : recorded.filter((r) => r.path === path).length,
    get maxConcurrentConnections() {
      return maxConnections;
    },
    get maxConcurrentRequests() {
      return maxRequests;
    },
    get connectionsOpened() {
      return connectionsOpened;
    },
    resetStats() {
      recorded.length = 0;
      maxConnections = openConnections;
      maxRequests = activeRequests;
      connectionsOpened = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
