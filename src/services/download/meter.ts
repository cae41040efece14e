/**
 * Every downloaded byte passes through a meter on its way to a sink: it counts, enforces the size
 * limit, hashes, and verifies length and SHA-256 at the end. `DownloadMeter` wraps it as a
 * transform whose `flush` does the verification, so a bad download errors the stream *before* its
 * end reaches the sink: a multipart upload is aborted instead of completed, and a `.part` file is
 * never renamed.
 */
import type { Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DownloadError } from './retry-policy.js';

export interface MeterOptions {
  /** Hash already fed with the bytes of a resumed prefix; absent when no checksum is wanted. */
  hash?: Hash;
  /** Bytes already stored before this transfer (a resumed `.part`). */
  startBytes: number;
  /** Abort when the total (prefix included) exceeds this. */
  maxBytes?: number;
  /** Total size the file must reach, from Content-Length or Content-Range. */
  expectedTotal?: number;
  /** Lowercase hex. */
  expectedSha256?: string;
  onBytes?: (bytes: number) => void;
}

export class ByteMeter {
  /** Total bytes of the file so far, prefix included. */
  total: number;
  /** Bytes that came over the network in this transfer. */
  received = 0;
  /** Hex digest, set by `finish` when hashing. */
  sha256: string | undefined;

  constructor(private readonly options: MeterOptions) {
    this.total = options.startBytes;
  }

  /** Counts and hashes one chunk; throws a permanent DownloadError past the size limit. */
  update(chunk: Buffer): void {
    this.total += chunk.length;
    this.received += chunk.length;
    const { maxBytes } = this.options;
    if (maxBytes !== undefined && this.total > maxBytes) {
      throw new DownloadError('too_large', `larger than the ${maxBytes}-byte limit; aborted`, {
        retryable: false,
      });
    }
    this.options.hash?.update(chunk);
    this.options.onBytes?.(chunk.length);
  }

  /** Verifies the length and the checksum once the body ended; throws a DownloadError on a mismatch. */
  finish(): string | undefined {
    const { expectedTotal, expectedSha256 } = this.options;
    if (expectedTotal !== undefined && this.total !== expectedTotal) {
      // A short body is a truncated transfer (worth a retry); a long one is a broken server.
      throw new DownloadError(
        'length_mismatch',
        `the body ended after ${this.total} of ${expectedTotal} bytes (Content-Length)`,
        { retryable: this.total < expectedTotal },
      );
    }
    if (this.options.hash === undefined) return undefined;
    this.sha256 = this.options.hash.digest('hex');
    if (expectedSha256 !== undefined && this.sha256 !== expectedSha256) {
      throw new DownloadError(
        'checksum_mismatch',
        `SHA-256 mismatch: expected ${expectedSha256}, got ${this.sha256}`,
        {
          retryable: false,
        },
      );
    }
    return this.sha256;
  }
}

/** The meter as a pass-through transform, for bodies streamed to a sink. */
export class DownloadMeter extends Transform {
  readonly meter: ByteMeter;

  constructor(options: MeterOptions) {
    super();
    this.meter = new ByteMeter(options);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.meter.update(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.meter.finish();
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }
}
