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
import { mongoUriHosts } from '../config/mongo-uri.js';
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

// Server error codes that blame one document, not the store: bad value or field name (FerretDB
// answers 2 for a key with '.' or a leading '$'), type mismatch, invalid BSON, '$'-prefixed or
// dotted names, document too large, schema validation failure, key too long. Only these make a
// message permanently failed; anything else (elections, shutdowns, timeouts, write conflicts,
// Unauthorized, quota or disk full, unrecognised codes) is the store's trouble and is retried,
// since calling it permanent would dead-letter every good message while the store is unwell.
const DOCUMENT_ERROR_CODES = new Set([2, 9, 14, 22, 52, 55, 56, 57, 121, 10334, 17280, 17419, 17420]);

/**
 * Whether an error from writing one document may go away by itself: everything except a server
 * answer with a document-level code (above) and no retryable label.
 */
export function isTransientMongoError(error: unknown): boolean {
  if (!(error instanceof MongoServerError)) return true;
  if (error.hasErrorLabel('RetryableWriteError') || error.hasErrorLabel('TransientTransactionError'))
    return true;
  if (error instanceof MongoBulkWriteError && error.result?.getWriteConcernError() !== undefined) return true;
  return !isDocumentErrorCode(error.code);
}

function isDocumentErrorCode(code: unknown): boolean {
  return typeof code === 'number' && DOCUMENT_ERROR_CODES.has(code);
}

/**
 * Why a failed bulk write concerns the whole batch rather than some of its documents, or
 * undefined when it names documents. Driver 7 wraps every error of `insertMany`/`bulkWrite` in a
 * `MongoBulkWriteError`: network and selection errors and command-level refusals (Unauthorized,
 * quota) arrive with no write errors, and an unsatisfied write concern (replication lag, a primary
 * stepping down) only in `result.getWriteConcernError()`: the documents may not be durable, so
 * the batch is not confirmed and is retried (the writes are idempotent).
 */
export function batchWideFailure(error: MongoBulkWriteError): string | undefined {
  const concern = error.result?.getWriteConcernError();
  if (concern !== undefined)
    return `write concern not satisfied (code ${concern.code}): ${concern.errmsg ?? ''}`;
  if (writeErrorsOf(error).length === 0 && !isDocumentErrorCode(error.code)) return describeError(error);
  return undefined;
}

/** Single-record writes in flight at once while isolating the culprit of a failed bulk write. */
const ISOLATION_CONCURRENCY = 10;
const DUPLICATE_KEY = 11000;

function writeErrorsOf(error: MongoBulkWriteError): readonly WriteError[] {
  const errors = error.writeErrors as WriteError[] | WriteError | undefined;
  if (errors === undefined) return [];
  return Array.isArray(errors) ? errors : [errors];
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

/** The host list of a URI (`h1:27017,h2:27017`), for messages (never the credentials). */
export function describeMongoTarget(uri: string, database: string, collection: string): string {
  return `MongoDB ${mongoUriHosts(uri) ?? 'MongoDB'}/${database}.${collection}`;
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
      const wide = batchWideFailure(error);
      if (wide !== undefined) return this.failBatch(batch, wide);
      const writeErrors = writeErrorsOf(error);
      if (error.result.insertedCount + writeErrors.length !== batch.length) {
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
          retryable: !isDocumentErrorCode(writeError.code),
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
      const wide = batchWideFailure(error);
      if (wide !== undefined) return this.failBatch(batch, wide);
      const writeErrors = writeErrorsOf(error);
      const accounted = error.result.matchedCount + error.result.upsertedCount + writeErrors.length;
      if (accounted !== batch.length) return this.upsertOneByOne(collection, batch, documents);
      const byIndex = new Map(writeErrors.map((w) => [w.index, w]));
      return batch.map((record, index): ItemResult => {
        const writeError = byIndex.get(index);
        if (writeError === undefined) return { key: record.key, ok: true };
        return {
          key: record.key,
          ok: false,
          error: `code ${writeError.code}: ${redactString(writeError.errmsg ?? '')}`,
          retryable: !isDocumentErrorCode(writeError.code),
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
