/**
 * Every downloaded byte passes a meter on its way to a sink: it counts, enforces the size limit,
 * reports progress, and checks the length at the end. The SHA-256 is computed beside it (in place
 * for small bodies, on a worker for large ones) and checked with `verifySha256`. Both checks run
 * before the sink sees the end of the body, so a bad download never commits: a `.part` file is
 * not renamed, a multipart upload is aborted instead of completed.
 */
import { DownloadError } from './retry-policy.js';

export interface MeterOptions {
  /** Bytes already stored before this transfer (a resumed `.part`). */
  startBytes: number;
  /** Abort when the total (prefix included) exceeds this. */
  maxBytes?: number;
  /** Total size the file must reach, from Content-Length or Content-Range. */
  expectedTotal?: number;
  onBytes?: (bytes: number) => void;
}

export class ByteMeter {
  /** Total bytes of the file so far, prefix included. */
  total: number;
  /** Bytes that came over the network in this transfer. */
  received = 0;

  constructor(private readonly options: MeterOptions) {
    this.total = options.startBytes;
  }

  /** Counts one chunk; throws a permanent DownloadError past the size limit. */
  update(chunk: Buffer): void {
    this.total += chunk.length;
    this.received += chunk.length;
    const { maxBytes } = this.options;
    if (maxBytes !== undefined && this.total > maxBytes) {
      throw new DownloadError('too_large', `larger than the ${maxBytes}-byte limit; aborted`, {
        retryable: false,
      });
    }
    this.options.onBytes?.(chunk.length);
  }

  /** Verifies the length once the body ended; throws a DownloadError on a mismatch. */
  finish(): void {
    const { expectedTotal } = this.options;
    if (expectedTotal !== undefined && this.total !== expectedTotal) {
      // A short body is a truncated transfer (worth a retry); a long one is a broken server.
      throw new DownloadError(
        'length_mismatch',
        `the body ended after ${this.total} of ${expectedTotal} bytes (Content-Length)`,
        { retryable: this.total < expectedTotal },
      );
    }
  }
}

/** Throws a permanent DownloadError when a checksum was asked for and `actual` differs. */
export function verifySha256(actual: string, expected: string | undefined): void {
  if (expected !== undefined && actual !== expected) {
    throw new DownloadError('checksum_mismatch', `SHA-256 mismatch: expected ${expected}, got ${actual}`, {
      retryable: false,
    });
  }
}
