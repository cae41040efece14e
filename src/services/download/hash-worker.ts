/**
 * SHA-256 of large bodies, computed on worker threads so that hashing does not take turns with
 * reading the network and writing the file on the main thread (on a 1 GiB body it was a third of
 * the main thread's time). A body is hashed in order by one worker; its bytes travel there in
 * batches whose ArrayBuffers are transferred (not copied) and come back for reuse, so each hashed
 * download holds at most `maxBatchesInFlight` x its batch size of hash buffers. Batches are sized
 * from a budget shared by the hashes open at the time: 512 KiB for one or two large downloads
 * (fewer messages, measured fastest), down to 64 KiB when many run at once.
 *
 * The worker is started on the first large body of a run (small bodies are hashed in place) and
 * stopped with `close()`. A resumed download's prefix is read and hashed by the worker itself.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Largest batch handed to a worker. */
export const HASH_BATCH_MAX_BYTES = 512 * 1024;
const HASH_BATCH_MIN_BYTES = 64 * 1024;
/** Batches one hash may have at a worker; beyond this the body is paused. */
export const HASH_BATCHES_IN_FLIGHT = 4;
/** Hash buffers of all open hashes together, before the per-hash floor of 4 x 64 KiB. */
export const HASH_BUFFER_BUDGET_BYTES = 4 * 1024 * 1024;

/** The batch size for a hash opened while `open` hashes (itself included) are open. */
export function hashBatchBytes(open: number, maxBatchesInFlight = HASH_BATCHES_IN_FLIGHT): number {
  const share = Math.floor(HASH_BUFFER_BUDGET_BYTES / (Math.max(1, open) * maxBatchesInFlight));
  return Math.max(HASH_BATCH_MIN_BYTES, Math.min(HASH_BATCH_MAX_BYTES, share));
}

// CommonJS, evaluated by the worker: kept as text so that it runs the same from `dist` and under
// the test runner (which has no compiled file to point a Worker at).
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { closeSync, openSync, readSync } = require('node:fs');
const hashes = new Map();
function hashPrefix(hash, path, bytes) {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(Math.min(1024 * 1024, bytes));
    let done = 0;
    while (done < bytes) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, bytes - done), done);
      if (n === 0) {
        throw Object.assign(new Error('the partial file ended after ' + done + ' of ' + bytes + ' bytes'), { code: 'ESHORTPREFIX' });
      }
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    const hash = hashes.get(m.id);
    if (hash) hash.update(new Uint8Array(m.buffer, 0, m.length));
    parentPort.postMessage({ op: 'done', id: m.id, buffer: m.buffer }, [m.buffer]);
  } else if (m.op === 'open') {
    const hash = createHash('sha256');
    try {
      if (m.prefixPath !== undefined) hashPrefix(hash, m.prefixPath, m.prefixBytes);
      hashes.set(m.id, hash);
      parentPort.postMessage({ op: 'opened', id: m.id });
    } catch (error) {
      parentPort.postMessage({ op: 'error', id: m.id, message: String(error && error.message || error), code: error && error.code, syscall: error && error.syscall });
    }
  } else if (m.op === 'digest') {
    const hash = hashes.get(m.id);
    hashes.delete(m.id);
    parentPort.postMessage(hash ? { op: 'digest', id: m.id, hex: hash.digest('hex') } : { op: 'error', id: m.id, message: 'no such hash' });
  } else if (m.op === 'drop') {
    hashes.delete(m.id);
  }
});
`;

type FromWorker =
  | { op: 'done'; id: number; buffer: ArrayBuffer }
  | { op: 'opened'; id: number }
  | { op: 'digest'; id: number; hex: string }
  | { op: 'error'; id: number; message: string; code?: string; syscall?: string };

/**
 * The SHA-256 of a streamed body, wherever it is computed. `update` takes a chunk and returns false
 * when the caller should pause until `onceRoom`; `digest` resolves after the last `update`.
 */
export interface StreamHash {
  /** Resolves once the hash is ready for the new bytes (a resumed prefix was hashed). */
  ready(): Promise<void>;
  update(chunk: Buffer): boolean;
  onceRoom(callback: () => void): void;
  /** Called once with the first failure that is not reported by `ready` or `digest` alone. */
  onError(listener: (error: Error) => void): void;
  digest(): Promise<string>;
  /** Abandons the hash. Idempotent; a no-op once digested. */
  destroy(): void;
}

/** A file whose first bytes a resumed download already holds. */
export interface HashPrefix {
  path: string;
  bytes: number;
}

export interface HashPoolOptions {
  /** Workers at most. Default: one per core beyond the main thread's, at least 1, at most 4. */
  maxWorkers?: number;
  /** Fixed batch size; default: from the shared budget (`hashBatchBytes`). */
  batchBytes?: number;
  maxBatchesInFlight?: number;
}

interface Lane {
  worker: Worker;
  hashes: Map<number, OffThreadSha256>;
}

function workerError(message: { message: string; code?: string; syscall?: string }): Error {
  const error = new Error(message.message) as NodeJS.ErrnoException;
  if (message.code !== undefined) error.code = message.code;
  if (message.syscall !== undefined) error.syscall = message.syscall;
  return error;
}

/** Hands hashes out to a few lazily started workers, each hash pinned to one worker. */
export class HashWorkerPool {
  private readonly lanes: Lane[] = [];
  private nextId = 1;
  private closed = false;
  private readonly maxWorkers: number;
  private readonly batchBytes: number | undefined;
  private readonly maxBatchesInFlight: number;
  private openHashes = 0;

  constructor(options: HashPoolOptions = {}) {
    this.maxWorkers = options.maxWorkers ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    this.batchBytes = options.batchBytes;
    this.maxBatchesInFlight = options.maxBatchesInFlight ?? HASH_BATCHES_IN_FLIGHT;
  }

  /** Workers started so far (for tests). */
  get workers(): number {
    return this.lanes.length;
  }

  /** Starts a SHA-256; with `prefix`, the worker first hashes that many bytes of that file. */
  open(prefix?: HashPrefix): OffThreadSha256 {
    if (this.closed) throw new Error('the hash pool is closed');
    const lane = this.pickLane();
    const id = this.nextId++;
    this.openHashes += 1;
    const batchBytes = this.batchBytes ?? hashBatchBytes(this.openHashes, this.maxBatchesInFlight);
    const hash = new OffThreadSha256(lane.worker, id, batchBytes, this.maxBatchesInFlight, () =>
      this.release(lane, id),
    );
    lane.hashes.set(id, hash);
    // Held while it has work, so a pending digest keeps the process alive; unreferenced otherwise.
    if (lane.hashes.size === 1) lane.worker.ref();
    lane.worker.postMessage(
      prefix ? { op: 'open', id, prefixPath: prefix.path, prefixBytes: prefix.bytes } : { op: 'open', id },
    );
    return hash;
  }

  /** Stops every worker; hashes still open fail. */
  async close(): Promise<void> {
    this.closed = true;
    const lanes = this.lanes.splice(0);
    for (const lane of lanes) {
      for (const hash of lane.hashes.values()) hash.fail(new Error('the hash pool was closed'));
    }
    await Promise.all(lanes.map((lane) => lane.worker.terminate()));
  }

  private pickLane(): Lane {
    let best: Lane | undefined;
    for (const lane of this.lanes) if (!best || lane.hashes.size < best.hashes.size) best = lane;
    if (best && (best.hashes.size === 0 || this.lanes.length >= this.maxWorkers)) return best;
    return this.startLane();
  }

  private startLane(): Lane {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const lane: Lane = { worker, hashes: new Map() };
    worker.unref();
    worker.on('message', (message: FromWorker) => lane.hashes.get(message.id)?.receive(message));
    const broken = (error: Error) => {
      const index = this.lanes.indexOf(lane);
      if (index >= 0) this.lanes.splice(index, 1);
      for (const hash of lane.hashes.values()) hash.fail(error);
      lane.hashes.clear();
    };
    worker.on('error', broken);
    worker.on('exit', (code) => {
      if (!this.closed) broken(new Error(`the hash worker exited with code ${code}`));
    });
    this.lanes.push(lane);
    return lane;
  }

  private release(lane: Lane, id: number): void {
    this.openHashes -= 1;
    if (lane.hashes.delete(id) && lane.hashes.size === 0) lane.worker.unref();
  }
}

/**
 * One SHA-256 computed by a worker. `update` copies a chunk into the current batch (the caller
 * keeps its buffer) and returns false once every batch is at the worker: the caller then pauses
 * until `onceRoom` fires. All calls come from the main thread.
 */
export class OffThreadSha256 implements StreamHash {
  /** open: takes bytes; sealed: the digest was asked of the worker; done: digested, failed or dropped. */
  private state: 'open' | 'sealed' | 'done' = 'open';
  private current: Uint8Array | undefined;
  private fill = 0;
  private readonly spare: ArrayBuffer[] = [];
  private allocated = 0;
  /** Bytes accepted while no batch was free, in order; copied as soon as a batch comes back. */
  private readonly overflow: Buffer[] = [];
  private roomWaiters: Array<() => void> = [];
  private readonly errorListeners: Array<(error: Error) => void> = [];
  private failure: Error | undefined;
  private readonly opened: Promise<void>;
  private resolveOpened: () => void = () => undefined;
  private rejectOpened: (error: Error) => void = () => undefined;
  private digestPromise: Promise<string> | undefined;
  private resolveDigest: (hex: string) => void = () => undefined;
  private rejectDigest: (error: Error) => void = () => undefined;

  constructor(
    private readonly worker: Worker,
    readonly id: number,
    private readonly batchBytes: number,
    private readonly maxBatches: number,
    private readonly onDone: () => void,
  ) {
    this.opened = new Promise<void>((resolve, reject) => {
      this.resolveOpened = resolve;
      this.rejectOpened = reject;
    });
    // Observed through ready(), digest() or onError(); never an unhandled rejection.
    this.opened.catch(() => undefined);
  }

  /** Resolves once the worker holds the hash (and hashed the prefix, if any). */
  ready(): Promise<void> {
    return this.opened;
  }

  /** Called once with the first failure (a worker crash, an unreadable prefix). */
  onError(listener: (error: Error) => void): void {
    if (this.failure !== undefined) listener(this.failure);
    else this.errorListeners.push(listener);
  }

  /** Takes a chunk; false means "pause until `onceRoom`" (the chunk is kept either way). */
  update(chunk: Buffer): boolean {
    if (this.state !== 'open' || this.digestPromise !== undefined) return true;
    if (this.overflow.length > 0) {
      this.overflow.push(chunk);
      return false;
    }
    const taken = this.take(chunk);
    if (taken < chunk.length) this.overflow.push(taken === 0 ? chunk : chunk.subarray(taken));
    return this.overflow.length === 0;
  }

  /** Calls `callback` once `update` may be called again without holding bytes back. */
  onceRoom(callback: () => void): void {
    if (this.overflow.length === 0 || this.state === 'done') callback();
    else this.roomWaiters.push(callback);
  }

  /** Sends what is left and resolves with the hex digest. Call after the last `update`. */
  digest(): Promise<string> {
    if (this.digestPromise) return this.digestPromise;
    this.digestPromise = new Promise<string>((resolve, reject) => {
      this.resolveDigest = resolve;
      this.rejectDigest = reject;
    });
    if (this.failure !== undefined) this.rejectDigest(this.failure);
    else if (this.state === 'done') this.rejectDigest(new Error('the hash was abandoned'));
    else this.seal();
    return this.digestPromise;
  }

  /** Abandons the hash; batches still at the worker are dropped when they come back. Idempotent. */
  destroy(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.overflow.length = 0;
    this.worker.postMessage({ op: 'drop', id: this.id });
    this.rejectDigest(new Error('the hash was abandoned'));
    for (const waiter of this.roomWaiters.splice(0)) waiter();
    this.onDone();
  }

  /** @internal A worker failure or the pool closing. */
  fail(error: Error): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.failure = error;
    this.overflow.length = 0;
    this.rejectOpened(error);
    this.rejectDigest(error);
    for (const listener of this.errorListeners.splice(0)) listener(error);
    // Whoever waits for room must not wait forever; the error listener aborts the download.
    for (const waiter of this.roomWaiters.splice(0)) waiter();
    this.onDone();
  }

  /** @internal A message from the worker about this hash. */
  receive(message: FromWorker): void {
    switch (message.op) {
      case 'opened':
        this.resolveOpened();
        return;
      case 'done':
        if (this.state !== 'open') return;
        this.spare.push(message.buffer);
        this.drainOverflow();
        if (this.digestPromise !== undefined) this.seal();
        return;
      case 'digest':
        if (this.state === 'done') return;
        this.state = 'done';
        this.onDone();
        this.resolveDigest(message.hex);
        return;
      case 'error':
        this.fail(workerError(message));
        return;
    }
  }

  /** Copies as much of `chunk` as free batches hold; returns the bytes taken. */
  private take(chunk: Buffer): number {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.current === undefined) {
        const buffer = this.spare.pop() ?? this.allocate();
        if (buffer === undefined) return offset;
        this.current = new Uint8Array(buffer);
        this.fill = 0;
      }
      const n = Math.min(chunk.length - offset, this.current.length - this.fill);
      chunk.copy(this.current, this.fill, offset, offset + n);
      this.fill += n;
      offset += n;
      if (this.fill === this.current.length) this.send();
    }
    return offset;
  }

  private allocate(): ArrayBuffer | undefined {
    if (this.allocated >= this.maxBatches) return undefined;
    this.allocated += 1;
    return new ArrayBuffer(this.batchBytes);
  }

  private send(): void {
    const current = this.current;
    if (current === undefined || this.fill === 0) return;
    const buffer = current.buffer as ArrayBuffer;
    this.worker.postMessage({ op: 'update', id: this.id, buffer, length: this.fill }, [buffer]);
    this.current = undefined;
    this.fill = 0;
  }

  private drainOverflow(): void {
    while (this.overflow.length > 0) {
      const chunk = this.overflow[0] as Buffer;
      const taken = this.take(chunk);
      if (taken < chunk.length) {
        this.overflow[0] = chunk.subarray(taken);
        return;
      }
      this.overflow.shift();
    }
    for (const waiter of this.roomWaiters.splice(0)) waiter();
  }

  /** Once every byte is at the worker (none held back), asks for the digest. */
  private seal(): void {
    if (this.state !== 'open' || this.overflow.length > 0) return;
    this.send();
    this.state = 'sealed';
    this.worker.postMessage({ op: 'digest', id: this.id });
  }
}

/**
 * The same hash on the main thread, for a machine with a single core, where a worker could only
 * take turns with the main thread and would add a copy and two messages per batch. A resumed
 * prefix is read in chunks, between other work.
 */
export class InThreadSha256 implements StreamHash {
  private readonly hash = createHash('sha256');
  private readonly prefixed: Promise<void>;
  private done = false;

  constructor(prefix?: HashPrefix) {
    this.prefixed = prefix ? this.hashPrefix(prefix) : Promise.resolve();
    this.prefixed.catch(() => undefined);
  }

  private async hashPrefix(prefix: HashPrefix): Promise<void> {
    if (prefix.bytes === 0) return;
    const stream = createReadStream(prefix.path, { start: 0, end: prefix.bytes - 1 });
    let read = 0;
    for await (const chunk of stream) {
      this.hash.update(chunk as Buffer);
      read += (chunk as Buffer).length;
    }
    if (read !== prefix.bytes) {
      throw Object.assign(new Error(`the partial file ended after ${read} of ${prefix.bytes} bytes`), {
        code: 'ESHORTPREFIX',
      });
    }
  }

  ready(): Promise<void> {
    return this.prefixed;
  }

  update(chunk: Buffer): boolean {
    if (!this.done) this.hash.update(chunk);
    return true;
  }

  onceRoom(callback: () => void): void {
    callback();
  }

  onError(): void {
    // Nothing fails between updates on this thread.
  }

  async digest(): Promise<string> {
    await this.prefixed;
    if (this.done) throw new Error('the hash was abandoned');
    this.done = true;
    return this.hash.digest('hex');
  }

  destroy(): void {
    this.done = true;
  }
}
