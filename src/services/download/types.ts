/** The shapes that flow through `download-urls`: one entry per URL in, one result per URL out. */

/** One URL to fetch, normalised from the input file (defaults already merged). */
export interface DownloadEntry {
  /** 0-based position in the list; results keep this order. */
  index: number;
  /** JSON pointer of the entry in the input file, for messages (`/urls/3`). */
  pointer: string;
  /** Absolute http(s) URL, as `URL.href`. */
  url: string;
  /** Relative name under the destination, as given (sanitised later). */
  filename?: string;
  /** Expected SHA-256, lowercase hex. */
  sha256?: string;
  /** Request headers, names lowercased. Secret: never logged or reported. */
  headers: Record<string, string>;
  /** Per-entry size limit in bytes; wins over `--max-bytes`. */
  maxBytes?: number;
}

export type DownloadStatus = 'downloaded' | 'unchanged' | 'skipped' | 'failed' | 'cancelled';

/** Why a download failed, machine-readable. */
export type FailureReason =
  | 'http_status'
  | 'network'
  | 'timeout'
  | 'too_many_redirects'
  | 'redirect_loop'
  | 'length_mismatch'
  | 'checksum_mismatch'
  | 'too_large'
  | 'write_failed'
  | 's3_failed'
  | 'interrupted'
  | 'invalid_response'
  | 'internal';

/** One line of the report. Every field is always present (null when it does not apply). */
export interface DownloadResult {
  index: number;
  /** The URL with credentials and signatures masked. */
  url: string;
  status: DownloadStatus;
  /** Final location: an absolute file path, or `s3://bucket/key`. Null when nothing was written. */
  path: string | null;
  /** Size of the final file (0 on failure). */
  bytes: number;
  /** SHA-256 of the final file, hex; null when unknown (e.g. skipped without a manifest record). */
  sha256: string | null;
  /** HTTP requests made for this entry (redirect hops are part of one request). */
  attempts: number;
  durationMs: number;
  /** Status of the last response, if any arrived. */
  httpStatus: number | null;
  /** Why it failed; null unless status is failed or cancelled. */
  reason: FailureReason | null;
  error: string | null;
  /** The name this entry asked for when a collision gave it another one. */
  renamedFrom: string | null;
  /** Bytes kept from an earlier partial download, when a download resumed. */
  resumedFromBytes: number;
  /** Human note: why it was skipped, that it was unchanged, which entry it duplicates. */
  note: string | null;
}

export interface DownloadSummary {
  total: number;
  downloaded: number;
  unchanged: number;
  skipped: number;
  failed: number;
  cancelled: number;
  /** Bytes received over the network in this run. */
  bytesReceived: number;
  /** HTTP requests made, retries included. */
  httpRequests: number;
  /** Requests beyond the first per entry. */
  retries: number;
  /** Entries whose name was changed to avoid a collision. */
  renamed: number;
  durationMs: number;
  /** `bytesReceived` per second of wall time. */
  bytesPerSecond: number;
  /** S3 requests by operation, when the target is S3. */
  s3Requests?: Record<string, number>;
}

export interface DownloadReport {
  summary: DownloadSummary;
  /** In input order. */
  results: DownloadResult[];
}

/** Live feedback for a progress display; every method is optional and must be cheap. */
export interface DownloadObserver {
  onRunStart?(total: number): void;
  /** Called per received chunk. */
  onBytes?(bytes: number): void;
  onResult?(result: DownloadResult): void;
  onRunEnd?(summary: DownloadSummary): void;
}
