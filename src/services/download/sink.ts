/**
 * Where downloaded bytes go. A sink hands out one writer per attempt; the writer's contents become
 * visible under the final name only through `commit`, and `abort` discards them. Both sinks keep
 * the same all-or-nothing rule: a local `.part` file renamed at the end, or an S3 multipart upload
 * completed at the end.
 */
import type { Writable } from 'node:stream';

/** What a server said about the version of a resource; used by If-Range and conditional requests. */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

/** Stored next to a disk `.part` so that a later run can resume it safely. */
export interface ResumeRecord extends Validators {
  /** The manifest key (SHA-256 of the full URL) the partial bytes came from; no other URL resumes them. */
  key: string;
  /** The URL with secrets masked, for people; never used to match. */
  url?: string;
  /** The size of the whole resource, when known: a resume that reports another size starts over. */
  totalBytes?: number;
}

export interface PartialFile {
  bytes: number;
  /** Undefined when no readable record exists (the partial file cannot be resumed). */
  record?: ResumeRecord;
  /** Local path of the partial bytes, read to hash the prefix of a resumed download. */
  path?: string;
}

export interface OpenOptions {
  /** Relative final name. */
  name: string;
  /** Continue the existing partial file instead of starting over. */
  append: boolean;
  contentType?: string;
  /** Total size when known; sinks may size buffers or decide what to persist by it. */
  expectedBytes?: number;
  /** Lets a disk sink make the partial file resumable by a later run. */
  resume?: ResumeRecord;
}

export interface SinkWriter {
  readonly stream: Writable;
  /** Makes the content visible under its final name. Only after `stream` finished without error. */
  commit(): Promise<void>;
  /**
   * Discards this attempt. With `keep`, a disk sink leaves the partial file and writes `keep` next
   * to it so the next attempt (or run) resumes; otherwise every trace is removed.
   */
  abort(keep?: ResumeRecord): Promise<void>;
}

export interface DownloadSink {
  /** Whether partial content survives an attempt (disk: yes; S3: every attempt starts over). */
  readonly supportsResume: boolean;
  /** Creates the directory or checks the bucket. Throws an AppError when the target is unusable. */
  prepare(): Promise<void>;
  /** Where a name ends up, for reports: an absolute path or `s3://bucket/key`. */
  location(name: string): string;
  /** Size of the existing file or object, or undefined when there is none. */
  exists(name: string): Promise<{ bytes: number } | undefined>;
  /** The partial file of a name, if any. */
  partial(name: string): Promise<PartialFile | undefined>;
  /** Removes a partial file and its record. */
  discardPartial(name: string): Promise<void>;
  open(options: OpenOptions): Promise<SinkWriter>;
  /**
   * Stores a small body that is already complete and verified, all or nothing. Cheaper than a
   * writer: no stream, and for S3 a single PutObject.
   */
  writeWhole(name: string, data: Buffer, contentType?: string): Promise<void>;
  readManifest(): Promise<string | undefined>;
  writeManifest(text: string): Promise<void>;
}
