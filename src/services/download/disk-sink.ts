/**
 * The local-directory sink. Each download streams into `<name>.part`, which is renamed to `<name>`
 * only after the body was complete and verified; rename is atomic, so another process sees either
 * the old file or the whole new one.
 *
 * No fsync per file: rename-after-close already gives readers all-or-nothing, and an fsync per
 * small file would cost more than the download itself (the 2,000 x 16 KiB benchmark). A power loss
 * can lose the newest files, which the next run downloads again.
 */
import { close, closeSync, constants, openSync, renameSync, unlinkSync, write, writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { mkdir, readdir, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { AppError } from '../../utils/errors.js';
import { silentLogger, type Logger } from '../../utils/logger.js';
import { PathEscapeError, isPlainRelativeName, resolveInside } from './naming.js';
import type { DownloadSink, OpenOptions, PartialFile, ResumeRecord, SinkWriter } from './sink.js';
import { MANIFEST_NAME } from './manifest.js';

/** Below this size a download restarts instead of resuming across runs, so no record is written up front. */
export const RESUME_RECORD_MIN_BYTES = 1024 * 1024;
const PART = '.part';
const RECORD = '.part.json';
/** Largest batch gathered before one write call: many network chunks per system call. */
export const WRITE_BATCH_MAX_BYTES = 1024 * 1024;
const WRITE_BATCH_MIN_BYTES = 64 * 1024;
/** Full batches that may wait for the disk before the body is paused. */
export const WRITE_BATCHES_QUEUED = 2;
/** Write buffers of all open `.part` writers together, before the per-writer floor. */
export const WRITE_BUFFER_BUDGET_BYTES = 8 * 1024 * 1024;

/**
 * The batch size of a writer opened while `open` writers (itself included) are open: 1 MiB for one
 * or two large downloads (measured: 1 GiB in 1.30 s against 1.47 s with 512 KiB), less when many
 * run at once, so that 16 large downloads hold ~16 MiB of write buffers rather than 80.
 */
export function writeBatchBytes(open: number): number {
  const share = Math.floor(WRITE_BUFFER_BUDGET_BYTES / (Math.max(1, open) * (WRITE_BATCHES_QUEUED + 2)));
  return Math.max(WRITE_BATCH_MIN_BYTES, Math.min(WRITE_BATCH_MAX_BYTES, share));
}
// O_NOFOLLOW: a planted `<name>.part` symlink must not redirect our writes elsewhere.
const OPEN_TRUNCATE =
  constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0);
const OPEN_APPEND = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | (constants.O_NOFOLLOW ?? 0);

/**
 * Snapshot entries are compared case-insensitively: on a case-insensitive file system `Data.csv`
 * is the file `data.csv`. On a case-sensitive one the worst case is one extra `stat`.
 */
function fold(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

async function unlinkQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
}

/** A write buffer: bytes `[written, length)` are still to be written. */
interface Batch {
  buffer: Buffer;
  length: number;
  written: number;
}

/**
 * Writes a `.part` file through the thread pool while the main thread goes on reading the network.
 * Chunks are copied into batches of `batchBytes` (many network reads per system call), and one
 * write at a time is in flight, so the file grows strictly in order (also with O_APPEND, where
 * positioned writes are not possible). While `maxQueuedBatches` full batches wait, the writer holds
 * back its callback: the stream's backpressure pauses the body. Bytes held per download: at most
 * (`maxQueuedBatches` + 3) x `batchBytes`, in buffers allocated once and reused.
 *
 * Copying costs ~0.1 s per GiB, and saves more: holding the network's own buffers until their
 * batch was written kept them alive across young-generation collections, so V8 promoted them and
 * had to run a full collection about every 64 MiB (38 per GiB, measured; 1 with copies).
 * Measured on a 2-core machine, 1 GiB to tmpfs from nginx: 1.0 s of transfer this way against
 * 1.7-2.5 s with synchronous writes (the network was not read while the main thread wrote).
 */
export class AsyncFileWriter extends Writable {
  private current: Batch | undefined;
  private readonly spare: Buffer[] = [];
  private readonly queue: Batch[] = [];
  private writing = false;
  private writeError: Error | undefined;
  /** A `_write` callback held back by backpressure. */
  private heldCallback: ((error?: Error | null) => void) | undefined;
  /** Called each time a write completes (used by `_final` and `_destroy` to wait for the queue). */
  private onIdle: (() => void) | undefined;
  private fd: number | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    fd: number,
    private readonly options: { batchBytes: number; maxQueuedBatches: number } = {
      batchBytes: WRITE_BATCH_MAX_BYTES,
      maxQueuedBatches: WRITE_BATCHES_QUEUED,
    },
  ) {
    super({ highWaterMark: options.batchBytes });
    this.fd = fd;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.writeError) {
      callback(this.writeError);
      return;
    }
    const size = this.options.batchBytes;
    let offset = 0;
    while (offset < chunk.length) {
      this.current ??= { buffer: this.spare.pop() ?? Buffer.allocUnsafeSlow(size), length: 0, written: 0 };
      const batch = this.current;
      const n = Math.min(chunk.length - offset, size - batch.length);
      chunk.copy(batch.buffer, batch.length, offset, offset + n);
      batch.length += n;
      offset += n;
      if (batch.length === size) this.enqueueBatch();
    }
    if (this.queue.length >= this.options.maxQueuedBatches) this.heldCallback = callback;
    else callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.enqueueBatch();
    this.whenDrained(() => callback(this.writeError ?? null));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // What arrived before a failure is a valid prefix: it is written out (for a resume, or deleted
    // by the caller), and the descriptor is closed only once no write uses it any more.
    this.heldCallback = undefined;
    if (!this.writeError) this.enqueueBatch();
    else this.queue.length = 0;
    this.whenDrained(() => {
      this.spare.length = 0;
      this.closeFd().then(
        () => callback(error),
        (closeError: unknown) => callback(error ?? (closeError as Error)),
      );
    });
  }

  /** Closes the file once the stream finished or failed; idempotent. */
  async close(): Promise<void> {
    if (!this.destroyed) this.destroy();
    if (!this.closed) await new Promise<void>((resolve) => this.once('close', () => resolve()));
    await this.closeFd();
  }

  private enqueueBatch(): void {
    const batch = this.current;
    if (batch === undefined || batch.length === 0) return;
    this.current = undefined;
    this.queue.push(batch);
    this.pump();
  }

  private pump(): void {
    if (this.writing || this.fd === undefined) return;
    const batch = this.queue[0];
    if (batch === undefined) return;
    this.writing = true;
    write(this.fd, batch.buffer, batch.written, batch.length - batch.written, null, (error, written) => {
      this.writing = false;
      if (error) {
        this.writeError = error;
        this.queue.length = 0;
        // Surfaces at once, even while the body is waiting for the network.
        this.destroy(error);
      } else {
        // A short write (rare on regular files) leaves the rest of the batch at the head.
        batch.written += written;
        if (batch.written === batch.length) {
          this.queue.shift();
          this.spare.push(batch.buffer);
        }
      }
      if (this.heldCallback && (this.writeError || this.queue.length < this.options.maxQueuedBatches)) {
        const held = this.heldCallback;
        this.heldCallback = undefined;
        held(this.writeError ?? null);
      }
      this.pump();
      this.onIdle?.();
    });
  }

  private whenDrained(done: () => void): void {
    const check = () => {
      if (this.writing || this.queue.length > 0) return;
      this.onIdle = undefined;
      done();
    };
    this.onIdle = check;
    check();
  }

  private closeFd(): Promise<void> {
    if (this.closing) return this.closing;
    const fd = this.fd;
    this.fd = undefined;
    this.closing =
      fd === undefined
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => close(fd, (error) => (error ? reject(error) : resolve())));
    return this.closing;
  }
}

export class DiskSink implements DownloadSink {
  readonly supportsResume = true;
  /**
   * Top-level names present when the run started, and the partial files and records kept since
   * (folded): saves a stat per file in the common case. It never shrinks, so it never hides a file.
   */
  private snapshot = new Set<string>();
  private readonly directories = new Map<string, Promise<void>>();
  private rootReal = '';
  /** `.part` writers open now; their batch size depends on it. */
  private openWriters = 0;

  private readonly root: string;
  /** `root` and a separator: plain names are appended to it without path resolution. */
  private readonly rootPrefix: string | undefined;

  constructor(
    root: string,
    private readonly logger: Logger = silentLogger,
  ) {
    this.root = resolve(root);
    // path.resolve + relative per file cost ~7 us, twice per file; POSIX names that are plain
    // (see isPlainRelativeName) are provably inside the root and need neither.
    this.rootPrefix = sep === '/' ? (this.root.endsWith('/') ? this.root : `${this.root}/`) : undefined;
  }

  async prepare(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      this.rootReal = await realpath(this.root);
      this.snapshot = new Set((await readdir(this.root)).map(fold));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new AppError(
        'CONFIG_INVALID',
        `--out: cannot use ${this.root} as the download directory: ${code}`,
        {
          cause: error,
        },
      );
    }
  }

  location(name: string): string {
    if (this.rootPrefix !== undefined && isPlainRelativeName(name)) return `${this.rootPrefix}${name}`;
    return resolveInside(this.root, name);
  }

  private inSnapshot(name: string): boolean | undefined {
    return name.includes('/') ? undefined : this.snapshot.has(fold(name));
  }

  private remember(name: string): void {
    if (!name.includes('/')) this.snapshot.add(fold(name));
  }

  /** Removes a resume record left by an earlier attempt or run, without a system call when there is none. */
  private async dropRecord(name: string): Promise<void> {
    const record = `${name}${RECORD}`;
    if (this.inSnapshot(record) === false) return;
    await unlinkQuietly(`${this.location(name)}${RECORD}`);
  }

  async exists(name: string): Promise<{ bytes: number } | undefined> {
    if (this.inSnapshot(name) === false) return undefined;
    try {
      const info = await stat(this.location(name));
      return { bytes: info.size };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async partial(name: string): Promise<PartialFile | undefined> {
    if (this.inSnapshot(`${name}${PART}`) === false) return undefined;
    const path = this.location(name);
    let bytes: number;
    try {
      bytes = (await stat(`${path}${PART}`)).size;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const partPath = `${path}${PART}`;
    try {
      const record = JSON.parse(await readFile(`${path}${RECORD}`, 'utf8')) as Partial<ResumeRecord>;
      // A record without a key (written by a version that keyed by the masked URL) is not trusted.
      if (typeof record.key !== 'string') return { bytes, path: partPath };
      const out: ResumeRecord = { key: record.key };
      if (typeof record.url === 'string') out.url = record.url;
      if (typeof record.etag === 'string') out.etag = record.etag;
      if (typeof record.lastModified === 'string') out.lastModified = record.lastModified;
      if (typeof record.totalBytes === 'number') out.totalBytes = record.totalBytes;
      return { bytes, record: out, path: partPath };
    } catch {
      // Missing or unreadable record: the bytes cannot be trusted to belong to this version.
      return { bytes, path: partPath };
    }
  }

  async discardPartial(name: string): Promise<void> {
    if (this.inSnapshot(`${name}${PART}`) !== false) await unlinkQuietly(`${this.location(name)}${PART}`);
    await this.dropRecord(name);
  }

  /** Creates the parent directory of a nested name once, and proves no symlink leads it outside the root. */
  private ensureParent(name: string, path: string): Promise<void> {
    // A name without a separator lives in the root, which prepare() created.
    if (!name.includes('/')) return Promise.resolve();
    const dir = dirname(path);
    if (dir === this.root) return Promise.resolve();
    let pending = this.directories.get(dir);
    if (!pending) {
      pending = (async () => {
        await mkdir(dir, { recursive: true });
        const real = await realpath(dir);
        const rel = relative(this.rootReal, real);
        if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
          throw new PathEscapeError(relative(this.root, path));
        }
      })();
      this.directories.set(dir, pending);
    }
    return pending;
  }

  async open(options: OpenOptions): Promise<SinkWriter> {
    const path = this.location(options.name);
    await this.ensureParent(options.name, path);
    const partPath = `${path}${PART}`;
    const recordPath = `${path}${RECORD}`;
    const writeRecord = async (record: ResumeRecord) => {
      await writeFile(recordPath, JSON.stringify(record));
      this.remember(`${options.name}${RECORD}`);
    };
    // Large or open-ended bodies get their record before the first byte, so even a killed process
    // leaves a resumable file. Small ones restart cheaply and skip the extra file.
    if (
      options.resume !== undefined &&
      (options.expectedBytes === undefined || options.expectedBytes >= RESUME_RECORD_MIN_BYTES)
    ) {
      await writeRecord(options.resume);
    } else if (!options.append) {
      // Before truncating: an older record would let a later run append to bytes of another source.
      await this.dropRecord(options.name);
    }
    const fd = openSync(partPath, options.append ? OPEN_APPEND : OPEN_TRUNCATE);
    this.openWriters += 1;
    const stream = new AsyncFileWriter(fd, {
      batchBytes: writeBatchBytes(this.openWriters),
      maxQueuedBatches: WRITE_BATCHES_QUEUED,
    });
    stream.once('close', () => (this.openWriters -= 1));
    return {
      stream,
      commit: async () => {
        await stream.close();
        renameSync(partPath, path);
        // The file is in place: a record left without its `.part` is never used, and the next
        // truncating open replaces it.
        await this.dropRecord(options.name).catch((error: unknown) =>
          this.logger.warn('resume_record_not_removed', { name: options.name, error }),
        );
      },
      abort: async (keep?: ResumeRecord) => {
        await stream.close();
        if (keep !== undefined) {
          await writeRecord(keep);
          this.remember(`${options.name}${PART}`);
          return;
        }
        await unlinkQuietly(partPath);
        await this.dropRecord(options.name);
      },
    };
  }

  /**
   * Synchronous on purpose: for a small file, four thread-pool round trips (open, write, close,
   * rename) cost several times more than the system calls themselves, and they compete with the
   * network for the CPU. Each call blocks the event loop for microseconds on a local disk.
   */
  async writeWhole(name: string, data: Buffer): Promise<void> {
    const path = this.location(name);
    await this.ensureParent(name, path);
    const partPath = `${path}${PART}`;
    // Before truncating: an older record would let a later run append to bytes of another source.
    await this.dropRecord(name);
    let fd: number | undefined;
    try {
      fd = openSync(partPath, OPEN_TRUNCATE);
      let offset = 0;
      while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
      closeSync(fd);
      fd = undefined;
      renameSync(partPath, path);
    } catch (error) {
      if (fd !== undefined) closeSync(fd);
      try {
        unlinkSync(partPath);
      } catch {
        // nothing to clean up
      }
      throw error;
    }
  }

  async readManifest(): Promise<string | undefined> {
    try {
      return await readFile(join(this.root, MANIFEST_NAME), 'utf8');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async writeManifest(text: string): Promise<void> {
    const path = join(this.root, MANIFEST_NAME);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, path);
  }
}
