/**
 * The two pieces that keep the main thread free for the network on large bodies: the disk writer
 * (thread-pool writes, in order, with a bounded queue) and the SHA-256 worker.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  mkdirSync,
  readSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import {
  AsyncFileWriter,
  DiskSink,
  RESUME_RECORD_MIN_BYTES,
  WRITE_BATCHES_QUEUED,
  WRITE_BUFFER_BUDGET_BYTES,
  writeBatchBytes,
} from '../../../src/services/download/disk-sink.js';
import {
  HASH_BATCHES_IN_FLIGHT,
  HASH_BUFFER_BUDGET_BYTES,
  HashWorkerPool,
  InThreadSha256,
  hashBatchBytes,
} from '../../../src/services/download/hash-worker.js';
import { createLogger } from '../../../src/utils/logger.js';
import { CaptureStream } from '../../helpers/streams.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'aws-msg-writers-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** `data` cut into chunks of irregular sizes, as a network delivers it. */
function chunksOf(data: Buffer, seed = 7): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  let n = seed;
  while (offset < data.length) {
    n = (n * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (n % 70_000);
    out.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return out;
}

/** Writes chunks honouring backpressure, as the downloader does. */
async function writeAll(writer: AsyncFileWriter, chunks: Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    if (!writer.write(chunk)) await new Promise((resolve) => writer.once('drain', resolve));
  }
  writer.end();
  await finished(writer);
}

describe('AsyncFileWriter', () => {
  it('writes every chunk in order', async () => {
    // Prepare
    const data = randomBytes(3 * 1024 * 1024 + 12_345);
    const path = join(dir, 'a.part');
    const writer = new AsyncFileWriter(openSync(path, 'w'), { batchBytes: 256 * 1024, maxQueuedBatches: 2 });

    // Act
    await writeAll(writer, chunksOf(data));
    await writer.close();

    // Assess
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('appends in order to a file opened with O_APPEND', async () => {
    const prefix = randomBytes(100_000);
    const rest = randomBytes(1_500_000);
    const path = join(dir, 'b.part');
    writeFileSync(path, prefix);
    const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND);
    const writer = new AsyncFileWriter(fd, { batchBytes: 64 * 1024, maxQueuedBatches: 3 });
    await writeAll(writer, chunksOf(rest, 3));
    await writer.close();
    expect(readFileSync(path).equals(Buffer.concat([prefix, rest]))).toBe(true);
  });

  it('holds the writer back while the disk is slow, and holds at most its queue', async () => {
    if (process.platform === 'win32') return;
    // Prepare: a FIFO nobody reads yet stands for a disk that does not keep up (a pipe holds 64 KiB).
    const fifo = join(dir, 'slow');
    execFileSync('mkfifo', [fifo]);
    const fd = openSync(fifo, constants.O_RDWR);
    const batchBytes = 32 * 1024;
    const writer = new AsyncFileWriter(fd, { batchBytes, maxQueuedBatches: 2 });
    const data = randomBytes(1024 * 1024);
    const chunks = chunksOf(data, 11).flatMap((c) => chunksOf(c, 5).map((x) => x.subarray(0, 8192)));
    const sent: Buffer[] = [];

    // The reader exists from the start (so a failed assertion can still unblock the thread pool),
    // but reads nothing until the "disk" is allowed to catch up.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const received: Buffer[] = [];
    let reading = false;
    const pumpReader = setInterval(() => {
      if (!reading) return;
      const buffer = Buffer.alloc(65_536);
      try {
        const n = readSync(reader, buffer);
        if (n > 0) received.push(buffer.subarray(0, n));
      } catch {
        // EAGAIN: nothing to read right now
      }
    }, 1);
    try {
      // Act: write whenever the writer allows, until it stops asking for more (the pipe is full).
      let next = 0;
      for (;;) {
        let accepted = true;
        while (accepted && next < chunks.length) {
          const chunk = chunks[next++] as Buffer;
          sent.push(chunk);
          accepted = writer.write(chunk);
        }
        const drainedInTime = await Promise.race([
          new Promise<boolean>((resolve) => writer.once('drain', () => resolve(true))),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 100)),
        ]);
        if (!drainedInTime || next >= chunks.length) break;
      }

      // Assess: it stopped after a bounded amount and did not drain while the "disk" was stuck:
      // the pipe's 64 KiB, the queue and the batch being filled, the stream's own buffer, a chunk.
      expect(next).toBeLessThan(chunks.length);
      const sentBytes = sent.reduce((sum, c) => sum + c.length, 0);
      expect(sentBytes).toBeLessThanOrEqual(64 * 1024 + 6 * batchBytes + 8192);
      expect(writer.writableNeedDrain).toBe(true);
    } finally {
      // Act: the disk catches up; everything written so far arrives, in order.
      reading = true;
      writer.end();
      await finished(writer).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
      clearInterval(pumpReader);
      closeSync(reader);
      await writer.close();
    }
    expect(Buffer.concat(received).equals(Buffer.concat(sent))).toBe(true);
  });

  it('keeps what arrived before a failure as a valid prefix', async () => {
    const data = randomBytes(700_000);
    const path = join(dir, 'c.part');
    const writer = new AsyncFileWriter(openSync(path, 'w'), { batchBytes: 256 * 1024, maxQueuedBatches: 2 });
    writer.on('error', () => undefined);
    writer.write(data.subarray(0, 300_000));
    writer.write(data.subarray(300_000, 450_000));
    writer.destroy(new Error('network reset'));
    await writer.close();
    expect(readFileSync(path).equals(data.subarray(0, 450_000))).toBe(true);
  });

  it('reports a failing write as a file-system error', async () => {
    const path = join(dir, 'd.part');
    writeFileSync(path, '');
    // Read-only descriptor: every write fails (EBADF) on the thread pool.
    const writer = new AsyncFileWriter(openSync(path, 'r'), { batchBytes: 1024, maxQueuedBatches: 2 });
    const failure = new Promise<NodeJS.ErrnoException>((resolve) => writer.once('error', resolve));
    writer.write(Buffer.alloc(4096));
    const error = await failure;
    expect(error.syscall).toBe('write');
    await writer.close();
  });
});

describe('HashWorkerPool', () => {
  let pool: HashWorkerPool;
  afterEach(async () => pool.close());

  it('computes the same SHA-256 as node:crypto, whatever the chunking', async () => {
    // Prepare
    pool = new HashWorkerPool({ batchBytes: 100_000, maxBatchesInFlight: 2 });
    const data = randomBytes(2_500_000);
    const hash = pool.open();

    // Act: feed with backpressure, as the downloader does.
    for (const chunk of chunksOf(data, 23)) {
      if (!hash.update(chunk)) await new Promise<void>((resolve) => hash.onceRoom(resolve));
    }

    // Assess
    await expect(hash.digest()).resolves.toBe(sha256(data));
  });

  it('takes every byte even past its buffers, and asks the caller to pause', async () => {
    pool = new HashWorkerPool({ batchBytes: 1024, maxBatchesInFlight: 1 });
    const data = randomBytes(10_000);
    const hash = pool.open();
    // No waiting: the first update already fills the only batch; the rest is held back, in order.
    const accepted = [hash.update(data.subarray(0, 5000)), hash.update(data.subarray(5000))];
    expect(accepted).toEqual([false, false]);
    await expect(hash.digest()).resolves.toBe(sha256(data));
  });

  it('hashes a resumed prefix from the file, then the new bytes', async () => {
    pool = new HashWorkerPool();
    const prefix = randomBytes(3_000_000);
    const rest = randomBytes(200_000);
    const path = join(dir, 'iso.part');
    writeFileSync(path, Buffer.concat([prefix, randomBytes(10)]));
    const hash = pool.open({ path, bytes: prefix.length });
    await hash.ready();
    hash.update(rest);
    await expect(hash.digest()).resolves.toBe(sha256(Buffer.concat([prefix, rest])));
  });

  it('fails a hash whose prefix cannot be read', async () => {
    pool = new HashWorkerPool();
    const hash = pool.open({ path: join(dir, 'missing.part'), bytes: 10 });
    await expect(hash.ready()).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
    await expect(hash.digest()).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('keeps concurrent hashes apart and starts no more workers than allowed', async () => {
    pool = new HashWorkerPool({ maxWorkers: 2, batchBytes: 4096 });
    const inputs = [randomBytes(50_000), randomBytes(70_000), randomBytes(90_000)];
    const hashes = inputs.map(() => pool.open());
    for (let offset = 0; offset < 90_000; offset += 1000) {
      inputs.forEach((input, i) => {
        if (offset < input.length) hashes[i]!.update(input.subarray(offset, offset + 1000));
      });
      await new Promise((resolve) => setImmediate(resolve));
    }
    const digests = await Promise.all(hashes.map((h) => h.digest()));
    expect(digests).toEqual(inputs.map(sha256));
    expect(pool.workers).toBe(2);
  });

  it('rejects the digest of an abandoned hash, and of every hash when the pool closes', async () => {
    pool = new HashWorkerPool();
    const dropped = pool.open();
    dropped.update(Buffer.from('abc'));
    dropped.destroy();
    await expect(dropped.digest()).rejects.toThrow('abandoned');

    const open = pool.open();
    open.update(Buffer.from('abc'));
    const closing = pool.close();
    await expect(open.digest()).rejects.toThrow('closed');
    await closing;
  });
});

describe('InThreadSha256 (single-core machines)', () => {
  it('hashes a resumed prefix from the file, then the new bytes, like the worker', async () => {
    const prefix = randomBytes(1_500_000);
    const rest = randomBytes(300_000);
    const path = join(dir, 'resume.part');
    writeFileSync(path, Buffer.concat([prefix, randomBytes(5)]));
    const hash = new InThreadSha256({ path, bytes: prefix.length });
    await hash.ready();
    for (const chunk of chunksOf(rest)) expect(hash.update(chunk)).toBe(true);
    await expect(hash.digest()).resolves.toBe(sha256(Buffer.concat([prefix, rest])));
  });

  it('fails when the prefix is shorter than recorded, and after destroy', async () => {
    const path = join(dir, 'short.part');
    writeFileSync(path, Buffer.alloc(10));
    const short = new InThreadSha256({ path, bytes: 20 });
    await expect(short.ready()).rejects.toMatchObject({ code: 'ESHORTPREFIX' });
    const dropped = new InThreadSha256();
    dropped.update(Buffer.from('x'));
    dropped.destroy();
    await expect(dropped.digest()).rejects.toThrow('abandoned');
  });
});

describe('buffer budgets', () => {
  it('gives one or two large downloads big batches and many of them a shared budget', () => {
    expect(writeBatchBytes(1)).toBe(1024 * 1024);
    expect(writeBatchBytes(2)).toBe(1024 * 1024);
    expect(hashBatchBytes(1)).toBe(512 * 1024);
    expect(hashBatchBytes(2)).toBe(512 * 1024);
    // 16 at once stay within the budgets (the first ones opened keep their larger batches).
    expect(16 * (WRITE_BATCHES_QUEUED + 2) * writeBatchBytes(16)).toBeLessThanOrEqual(
      WRITE_BUFFER_BUDGET_BYTES,
    );
    expect(16 * HASH_BATCHES_IN_FLIGHT * hashBatchBytes(16)).toBeLessThanOrEqual(HASH_BUFFER_BUDGET_BYTES);
    // A floor keeps system calls and messages few even with hundreds of downloads.
    expect(writeBatchBytes(1000)).toBe(64 * 1024);
    expect(hashBatchBytes(1000)).toBe(64 * 1024);
  });
});

describe('DiskSink', () => {
  const big = RESUME_RECORD_MIN_BYTES * 2;

  it('removes an older resume record before it truncates the partial file', async () => {
    // Prepare: a resumable partial of URL a, as a killed run leaves it.
    const sink = new DiskSink(dir);
    await sink.prepare();
    const a = await sink.open({
      name: 'x.bin',
      append: false,
      expectedBytes: big,
      resume: { key: 'a', etag: '"a"' },
    });
    a.stream.write(Buffer.alloc(1000, 65));
    await a.abort({ key: 'a', etag: '"a"' });
    expect((await sink.partial('x.bin'))?.record).toEqual({ key: 'a', etag: '"a"' });

    // Act: URL b, without a validator, takes over the name (and could be killed at any moment).
    const b = await sink.open({ name: 'x.bin', append: false, expectedBytes: big });
    b.stream.write(Buffer.alloc(500, 66));
    b.stream.end();
    await finished(b.stream);

    // Assess: b's bytes are not resumable as a's.
    expect(await sink.partial('x.bin')).toEqual({ bytes: 500, path: join(dir, 'x.bin.part') });
  });

  it('commits a file whose resume record cannot be removed, and logs it', async () => {
    // Prepare
    const log = new CaptureStream();
    const sink = new DiskSink(dir, createLogger({ stream: log }));
    await sink.prepare();
    const writer = await sink.open({
      name: 'y.bin',
      append: false,
      expectedBytes: big,
      resume: { key: 'y', etag: '"y"' },
    });
    // The record becomes something unlink refuses.
    unlinkSync(join(dir, 'y.bin.part.json'));
    mkdirSync(join(dir, 'y.bin.part.json'));
    writer.stream.end(Buffer.alloc(100, 1));
    await finished(writer.stream);

    // Act
    await writer.commit();

    // Assess
    expect(readFileSync(join(dir, 'y.bin')).equals(Buffer.alloc(100, 1))).toBe(true);
    expect(log.text()).toContain('resume_record_not_removed');
  });
});
