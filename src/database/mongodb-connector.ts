/**
 * The MongoDB sink: one unordered bulk upsert per batch, keyed by the message key, with a unique
 * index created at start. Works against MongoDB and wire-compatible servers (FerretDB, DocumentDB,
 * Cosmos DB for MongoDB): no transactions, no TTL indexes, no client-level bulkWrite.
 */
import {
  MongoBulkWriteError,
  MongoClient,
  MongoNetworkError,
  MongoServerError,
  MongoServerSelectionError,
  type AnyBulkWriteOperation,
  type Collection,
  type Document,
} from 'mongodb';
import { AppError, describeError } from '../utils/errors.js';
import { redactString, silentLogger, type Logger } from '../utils/logger.js';
import { failAll, type ItemResult, type MessageRecord, type Sink } from './sink.js';

export interface MongoSinkOptions {
  uri: string;
  database: string;
  collection: string;
  /** Injected client (tests, Lambda reuse). Default: one built from `uri`. */
  client?: MongoClient;
  /** How long to look for a server before an operation fails. Default 5000 ms unless the URI sets it. */
  serverSelectionTimeoutMs?: number;
  logger?: Logger;
}

/** The stored document. `key` is unique; `messageAttributes` is a list so that names with dots are legal. */
export interface MessageDocument {
  key: string;
  messageId: string;
  body: unknown;
  groupId?: string;
  sequenceNumber?: string;
  deduplicationId?: string;
  attributes: Record<string, string>;
  messageAttributes: Array<{ name: string; dataType: string; value: string }>;
  sentAt: Date;
  receivedAt: Date;
  firstReceivedAt?: Date;
  storedAt: Date;
  receiveCount: number;
  archiveKey?: string;
}

export const MONGO_INDEXES = [
  { key: { key: 1 }, name: 'key_unique', unique: true },
  { key: { sentAt: 1 }, name: 'sentAt' },
] as const;

// Server error codes worth retrying: elections, shutdowns, timeouts, write conflicts, and 11000,
// which an upsert can hit when two deliveries of one key race; the retry finds the document.
const TRANSIENT_CODES = new Set([
  6, 7, 50, 89, 91, 112, 189, 262, 9001, 10107, 11000, 11600, 11602, 13435, 13436, 16500,
]);

export function isTransientMongoError(error: unknown): boolean {
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError) return true;
  if (error instanceof MongoServerError) {
    if (error.hasErrorLabel('RetryableWriteError') || error.hasErrorLabel('TransientTransactionError')) return true;
    return typeof error.code === 'number' && TRANSIENT_CODES.has(error.code);
  }
  return false;
}

/** Single-record writes in flight at once while isolating the culprit of a failed bulk write. */
const ISOLATION_CONCURRENCY = 10;

export function toDocument(record: MessageRecord, storedAt: Date): MessageDocument {
  const doc: MessageDocument = {
    key: record.key,
    messageId: record.messageId,
    body: record.body,
    attributes: record.attributes,
    messageAttributes: Object.entries(record.messageAttributes).map(([name, v]) => ({
      name,
      dataType: v.dataType,
      value: v.value,
    })),
    sentAt: record.sentAt,
    receivedAt: record.receivedAt,
    storedAt,
    receiveCount: record.receiveCount,
  };
  if (record.groupId !== undefined) doc.groupId = record.groupId;
  if (record.sequenceNumber !== undefined) doc.sequenceNumber = record.sequenceNumber;
  if (record.deduplicationId !== undefined) doc.deduplicationId = record.deduplicationId;
  if (record.firstReceivedAt !== undefined) doc.firstReceivedAt = record.firstReceivedAt;
  if (record.archiveKey !== undefined) doc.archiveKey = record.archiveKey;
  return doc;
}

/** The host part of a URI, for messages (never the credentials). */
export function describeMongoTarget(uri: string, database: string, collection: string): string {
  let host = 'MongoDB';
  try {
    host = new URL(uri).host || host;
  } catch {
    // keep the generic name
  }
  return `MongoDB ${host}/${database}.${collection}`;
}

export class MongoSink implements Sink {
  readonly name = 'mongodb';
  private readonly client: MongoClient;
  private readonly ownsClient: boolean;
  private readonly target: string;
  private readonly logger: Logger;
  private collection?: Collection<MessageDocument>;
  private closed = false;

  constructor(private readonly options: MongoSinkOptions) {
    this.logger = options.logger ?? silentLogger;
    this.target = describeMongoTarget(options.uri, options.database, options.collection);
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? createMongoClient(options.uri, options.serverSelectionTimeoutMs);
  }

  async open(): Promise<void> {
    try {
      await this.client.connect();
      const collection = this.client.db(this.options.database).collection<MessageDocument>(this.options.collection);
      await ensureMongoIndexes(collection);
      this.collection = collection;
      this.logger.info('store_opened', { store: this.name, target: this.target });
    } catch (error) {
      throw new AppError('DEPENDENCY_UNAVAILABLE', `${this.target}: ${redactString(describeError(error))}`, {
        cause: error,
        retryable: isTransientMongoError(error),
      });
    }
  }

  async write(batch: readonly MessageRecord[]): Promise<ItemResult[]> {
    if (batch.length === 0) return [];
    const collection = this.collection;
    if (!collection) return failAll(batch, `${this.name} is not open`, true);
    const storedAt = new Date();
    const operations: AnyBulkWriteOperation<MessageDocument>[] = batch.map((record) => ({
      updateOne: {
        filter: { key: record.key },
        update: { $set: toDocument(record, storedAt) as Document },
        upsert: true,
      },
    }));
    try {
      await collection.bulkWrite(operations, { ordered: false });
      return batch.map((record) => ({ key: record.key, ok: true }));
    } catch (error) {
      return this.mapBulkError(collection, batch, operations, error);
    }
  }

  /**
   * Maps a bulk failure back to the records that caused it. The server's write errors are trusted
   * only when its counts account for every operation; otherwise (FerretDB v1 stops at the first
   * bad document and reports index 0) each record is retried alone, which is safe because every
   * operation is an idempotent upsert.
   */
  private async mapBulkError(
    collection: Collection<MessageDocument>,
    batch: readonly MessageRecord[],
    operations: readonly AnyBulkWriteOperation<MessageDocument>[],
    error: unknown,
  ): Promise<ItemResult[]> {
    if (!(error instanceof MongoBulkWriteError)) {
      const message = redactString(describeError(error));
      this.logger.warn('store_write_failed', { store: this.name, records: batch.length, error: message });
      // The whole batch failed, so the store, not a message, is at fault: always worth retrying.
      return failAll(batch, message, true);
    }
    const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
    const accounted = error.result.matchedCount + error.result.upsertedCount + writeErrors.length;
    if (accounted !== batch.length || error.writeConcernError) {
      this.logger.debug('store_write_isolating', { store: this.name, records: batch.length });
      return this.writeOneByOne(collection, batch, operations);
    }
    const byIndex = new Map(writeErrors.map((w) => [w.index, w]));
    return batch.map((record, index): ItemResult => {
      const writeError = byIndex.get(index);
      if (writeError === undefined) return { key: record.key, ok: true };
      return {
        key: record.key,
        ok: false,
        error: `code ${writeError.code}: ${redactString(writeError.errmsg ?? '')}`,
        retryable: TRANSIENT_CODES.has(writeError.code),
      };
    });
  }

  private async writeOneByOne(
    collection: Collection<MessageDocument>,
    batch: readonly MessageRecord[],
    operations: readonly AnyBulkWriteOperation<MessageDocument>[],
  ): Promise<ItemResult[]> {
    const results: ItemResult[] = [];
    for (let start = 0; start < batch.length; start += ISOLATION_CONCURRENCY) {
      const slice = batch.slice(start, start + ISOLATION_CONCURRENCY);
      results.push(
        ...(await Promise.all(
          slice.map(async (record, offset): Promise<ItemResult> => {
            try {
              await collection.bulkWrite([operations[start + offset] as AnyBulkWriteOperation<MessageDocument>]);
              return { key: record.key, ok: true };
            } catch (error) {
              const reason = redactString(describeError(error));
              return { key: record.key, ok: false, error: reason, retryable: isTransientMongoError(error) };
            }
          }),
        )),
      );
    }
    return results;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) await this.client.close();
  }
}

export function createMongoClient(uri: string, serverSelectionTimeoutMs = 5000): MongoClient {
  const setsTimeout = /[?&]serverSelectionTimeoutMS=/i.test(uri);
  return new MongoClient(uri, {
    ...(setsTimeout ? {} : { serverSelectionTimeoutMS: serverSelectionTimeoutMs }),
    appName: 'aws-msg',
  });
}

/**
 * Creates the indexes process-sqs relies on. Idempotent: an existing identical index is kept.
 * One command per index: FerretDB v1 drops the connection when a multi-index createIndexes
 * names indexes that already exist.
 */
export async function ensureMongoIndexes(collection: Collection<MessageDocument>): Promise<void> {
  for (const { key, ...options } of MONGO_INDEXES) await collection.createIndex({ ...key }, options);
}
