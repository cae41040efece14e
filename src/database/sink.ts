/**
 * The one interface every store implements (MongoDB, SQL Server, the S3 archive). Adding a store
 * is one more object in the sink list; the processor and the acknowledgement contract don't change.
 */

/** A validated message as the stores keep it. */
export interface MessageRecord {
  /** Idempotency key: the SQS MessageId, or the value of `--id-field`. Unique within one batch. */
  key: string;
  messageId: string;
  /** The parsed JSON body. */
  body: unknown;
  /** The body exactly as received. */
  rawBody: string;
  /** FIFO only. */
  groupId?: string;
  /** FIFO only. */
  sequenceNumber?: string;
  /** FIFO only. */
  deduplicationId?: string;
  /** SQS system attributes as received (SentTimestamp, ApproximateReceiveCount...). */
  attributes: Record<string, string>;
  /** User message attributes; binary values are base64. */
  messageAttributes: Record<string, { dataType: string; value: string }>;
  /** When the producer sent it (SentTimestamp); the receive time when SQS did not say. */
  sentAt: Date;
  /** When this delivery was received. */
  receivedAt: Date;
  /** When SQS first delivered it (ApproximateFirstReceiveTimestamp), if known. */
  firstReceivedAt?: Date;
  /** ApproximateReceiveCount of this delivery (1 on the first). */
  receiveCount: number;
  /** The S3 key when the archive rule selected this record. Deterministic: a rerun overwrites it. */
  archiveKey?: string;
}

/** The outcome of one record in one sink. */
export type ItemResult =
  | { key: string; ok: true }
  | {
      key: string;
      ok: false;
      /** One line: what the store said, never a secret. */
      error: string;
      /** True: try again later (outage, timeout, throttling). False: this record can never be stored. */
      retryable: boolean;
    };

export interface Sink {
  /** Short name for logs and summaries: `mongodb`, `mssql`, `s3-archive`. */
  readonly name: string;
  /**
   * Connects and prepares (indexes, tables, bucket check). Throws an AppError with code
   * DEPENDENCY_UNAVAILABLE (exit code 3) when the store cannot be reached or used.
   */
  open(): Promise<void>;
  /**
   * Stores a batch idempotently (a rerun of the same records changes nothing but timestamps).
   * Returns exactly one result per record, matched by `key`. Keys are unique within a batch.
   * Never throws for a store problem: an outage makes every record fail with `retryable: true`.
   */
  write(batch: readonly MessageRecord[]): Promise<ItemResult[]>;
  /** Releases connections. Safe to call twice. */
  close(): Promise<void>;
}

/** Builds a result for every record of a batch from one error, e.g. when a store is unreachable. */
export function failAll(batch: readonly MessageRecord[], error: string, retryable: boolean): ItemResult[] {
  return batch.map((record) => ({ key: record.key, ok: false, error, retryable }));
}
