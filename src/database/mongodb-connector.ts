/**
 * The MongoDB sink: one unordered bulk upsert per batch, keyed by the message key, with a unique
 * index created at start. Works against MongoDB and wire-compatible servers (FerretDB, DocumentDB,
 * Cosmos DB for MongoDB): no transactions, no TTL indexes, no client-level bulkWrite.
 */
import {
  MongoBulkWriteError,
  MongoClient,
  MongoServerError,
  type AnyBulkWriteOperation,
  type Collection,
  type Document,
  type WriteError,
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

/**
 * The stored document. `_id` is the message key (so a key exists once by construction), `key`
 * repeats it under a unique index for readable queries; `messageAttributes` is a list so that
 * attribute names with dots stay legal on every server.
 */
export interface MessageDocument {
  _id: string;
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

/**
 * Whether an error from writing one document may go away by itself. Only a server that answered
 * with a document-level error code (bad field name, too large, validation) is permanent; network
 * and selection errors, pool resets, timeouts and anything unrecognised are transient, because
 * calling them permanent would dead-letter good messages during an outage.
 */
export function isTransientMongoError(error: unknown): boolean {
  if (!(error instanceof MongoServerError)) return true;
  if (error.hasErrorLabel('RetryableWriteError') || error.hasErrorLabel('TransientTransactionError'))
    return true;
  return typeof error.code !== 'number' || TRANSIENT_CODES.has(error.code);
}

/** Single-record writes in flight at once while isolating the culprit of a failed bulk write. */
const ISOLATION_CONCURRENCY = 10;
const DUPLICATE_KEY = 11000;

function writeErrorsOf(error: MongoBulkWriteError): readonly WriteError[] {
  const errors = error.writeErrors;
  return Array.isArray(errors) ? errors : [errors as WriteError];
}

/** `_id` is the message key: lookups by `_id` are the fast path on every MongoDB-wire server. */
function upsertOperation(document: MessageDocument): AnyBulkWriteOperation<MessageDocument> {
  const { _id, ...fields } = document;
  return { updateOne: { filter: { _id }, update: { $set: fields as Document }, upsert: true } };
}

export function toDocument(record: MessageRecord, storedAt: Date): MessageDocument {
  const doc: MessageDocument = {
    _id: record.key,
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
      const collection = this.client
        .db(this.options.database)
        .collection<MessageDocument>(this.options.collection);
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

  /**
   * Insert first, upsert what already exists. A fresh message (the common case) costs one
   * `insertMany`; a redelivery or a repeated key hits the unique `_id` (duplicate key 11000) and is
   * then upserted by `_id`, so the newest delivery wins and there is still one document per key.
   * (FerretDB v1 upserts row by row and ~20x slower than it inserts; MongoDB inserts faster too.)
   */
  async write(batch: readonly MessageRecord[]): Promise<ItemResult[]> {
    if (batch.length === 0) return [];
    const collection = this.collection;
    if (!collection) return failAll(batch, `${this.name} is not open`, true);
    const storedAt = new Date();
    const documents = batch.map((record) => toDocument(record, storedAt));
    try {
      await collection.insertMany(documents, { ordered: false });
      return batch.map((record) => ({ key: record.key, ok: true }));
    } catch (error) {
      if (!(error instanceof MongoBulkWriteError)) return this.failBatch(batch, error);
      const writeErrors = writeErrorsOf(error);
      if (error.result.insertedCount + writeErrors.length !== batch.length || error.writeConcernError) {
        // The server's answer does not account for every document: upsert each one alone.
        return this.upsertOneByOne(collection, batch, documents);
      }
      const byIndex = new Map(writeErrors.map((w) => [w.index, w]));
      const existing = batch.flatMap((record, index) =>
        byIndex.get(index)?.code === DUPLICATE_KEY ? [index] : [],
      );
      const upserted = new Map<string, ItemResult>();
      if (existing.length > 0) {
        const results = await this.upsert(
          collection,
          existing.map((i) => batch[i] as MessageRecord),
          existing.map((i) => documents[i] as MessageDocument),
        );
        for (const result of results) upserted.set(result.key, result);
      }
      return batch.map((record, index): ItemResult => {
        const writeError = byIndex.get(index);
        if (writeError === undefined) return { key: record.key, ok: true };
        if (writeError.code === DUPLICATE_KEY) return upserted.get(record.key) as ItemResult;
        return {
          key: record.key,
          ok: false,
          error: `code ${writeError.code}: ${redactString(writeError.errmsg ?? '')}`,
          retryable: TRANSIENT_CODES.has(writeError.code),
        };
      });
    }
  }

  /**
   * Upserts by `_id` in one unordered bulk write. Per-document failures are trusted only when the
   * server's counts account for every operation; otherwise (FerretDB v1 stops at the first bad
   * update and reports index 0) each document is upserted alone, which is safe because upserts
   * are idempotent.
   */
  private async upsert(
    collection: Collection<MessageDocument>,
    batch: readonly MessageRecord[],
    documents: readonly MessageDocument[],
  ): Promise<ItemResult[]> {
    try {
      await collection.bulkWrite(documents.map(upsertOperation), { ordered: false });
      return batch.map((record) => ({ key: record.key, ok: true }));
    } catch (error) {
      if (!(error instanceof MongoBulkWriteError)) return this.failBatch(batch, error);
      const writeErrors = writeErrorsOf(error);
      const accounted = error.result.matchedCount + error.result.upsertedCount + writeErrors.length;
      if (accounted !== batch.length || error.writeConcernError)
        return this.upsertOneByOne(collection, batch, documents);
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
  }

  /** The whole batch failed, so the store, not a message, is at fault: always worth retrying. */
  private failBatch(batch: readonly MessageRecord[], error: unknown): ItemResult[] {
    const message = redactString(describeError(error));
    this.logger.warn('store_write_failed', { store: this.name, records: batch.length, error: message });
    return failAll(batch, message, true);
  }

  private async upsertOneByOne(
    collection: Collection<MessageDocument>,
    batch: readonly MessageRecord[],
    documents: readonly MessageDocument[],
  ): Promise<ItemResult[]> {
    this.logger.debug('store_write_isolating', { store: this.name, records: batch.length });
    const results: ItemResult[] = [];
    for (let start = 0; start < batch.length; start += ISOLATION_CONCURRENCY) {
      const slice = batch.slice(start, start + ISOLATION_CONCURRENCY);
      results.push(
        ...(await Promise.all(
          slice.map(async (record, offset): Promise<ItemResult> => {
            try {
              await collection.bulkWrite([upsertOperation(documents[start + offset] as MessageDocument)]);
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
