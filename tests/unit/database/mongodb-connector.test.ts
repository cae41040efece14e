/**
 * How the MongoDB sink reads a failed bulk write. The driver is the boundary here: its own error
 * classes (built as driver 7 builds them in `bulk/common.js`) stand in for a server answer that
 * FerretDB cannot produce (write concern, Unauthorized). The paths FerretDB can produce (a refused
 * field name, an outage) run against it in tests/integration/process-sqs*.test.ts.
 */
import { createRequire } from 'node:module';
import { MongoBulkWriteError, MongoNetworkError, MongoServerError, type MongoClient } from 'mongodb';
import { isTransientMongoError, MongoSink } from '../../../src/database/mongodb-connector.js';
import type { ItemResult } from '../../../src/database/sink.js';
import { messageRecords } from '../../helpers/records.js';

const require = createRequire(import.meta.url);
// Not exported by the package's index; the bulk module is where the driver builds these.
const bulk = require('mongodb/lib/bulk/common.js') as {
  BulkWriteResult: new (result: unknown, ordered: boolean) => MongoBulkWriteError['result'];
  WriteConcernError: new (error: { code: number; errmsg: string }) => unknown;
};

function bulkResult(fields: { inserted?: number; writeErrors?: unknown[]; writeConcernErrors?: unknown[] }) {
  return new bulk.BulkWriteResult(
    {
      ok: 1,
      writeErrors: fields.writeErrors ?? [],
      writeConcernErrors: fields.writeConcernErrors ?? [],
      insertedIds: [],
      nInserted: fields.inserted ?? 0,
      nUpserted: 0,
      nMatched: 0,
      nModified: 0,
      nRemoved: 0,
      upserted: [],
    },
    false,
  );
}

/** One result as plain fields, whichever way it went. */
function view(result: ItemResult | undefined) {
  if (result === undefined) return undefined;
  return result.ok ? { key: result.key, ok: true } : { ...result };
}

/** A sink over a collection whose insertMany throws `error`; counts the upserts it is asked for. */
async function sinkFailingWith(error: Error) {
  const upserts: unknown[] = [];
  const collection = {
    createIndex: async () => 'ok',
    insertMany: async () => {
      throw error;
    },
    bulkWrite: async (operations: unknown[]) => {
      upserts.push(...operations);
      return {};
    },
  };
  const client = {
    connect: async () => undefined,
    db: () => ({ collection: () => collection }),
    close: async () => undefined,
  } as unknown as MongoClient;
  const sink = new MongoSink({ uri: 'mongodb://127.0.0.1:1/', database: 'd', collection: 'c', client });
  await sink.open();
  return { sink, upserts };
}

describe('MongoSink.write: a failed insertMany', () => {
  it('an unsatisfied write concern confirms nothing: the whole batch is retried later', async () => {
    // Prepare: every document inserted, but not durable (replication timed out).
    const concern = new bulk.WriteConcernError({ code: 64, errmsg: 'waiting for replication timed out' });
    const error = new MongoBulkWriteError(
      { message: 'waiting for replication timed out', code: 64 },
      bulkResult({ inserted: 3, writeConcernErrors: [concern] }),
    );
    const { sink, upserts } = await sinkFailingWith(error);

    // Act
    const results = await sink.write(messageRecords(3));

    // Assess
    expect(results.map((r) => [r.ok, r.ok ? undefined : r.retryable])).toEqual([
      [false, true],
      [false, true],
      [false, true],
    ]);
    expect(view(results[0])).toMatchObject({
      error: expect.stringMatching(/write concern not satisfied \(code 64\)/),
    });
    expect(upserts).toHaveLength(0);
  });

  it.each([
    ['Unauthorized (13)', 13],
    ['an Atlas quota (8000)', 8000],
    ['out of disk space (14031)', 14031],
  ])(
    'a command-level refusal, %s, fails the batch as transient, not each message as permanent',
    async (_, code) => {
      const error = new MongoBulkWriteError(
        new MongoServerError({ message: 'refused', code }),
        bulkResult({}),
      );
      const { sink, upserts } = await sinkFailingWith(error);

      const results = await sink.write(messageRecords(4));

      expect(results.every((r) => !r.ok && r.retryable)).toBe(true);
      expect(upserts).toHaveLength(0);
    },
  );

  it('a network error wrapped by the driver fails the batch as transient', async () => {
    const error = new MongoBulkWriteError(new MongoNetworkError('connection reset'), bulkResult({}));
    const { sink } = await sinkFailingWith(error);

    const results = await sink.write(messageRecords(2));

    expect(results.every((r) => !r.ok && r.retryable)).toBe(true);
  });

  it('a document-level write error fails that message alone, permanently', async () => {
    const writeErrors = [{ index: 1, code: 2, errmsg: 'invalid key: "m.x"' }];
    const error = new MongoBulkWriteError(
      { message: 'invalid key', code: 2, writeErrors: writeErrors as never },
      bulkResult({ inserted: 2, writeErrors }),
    );
    const { sink } = await sinkFailingWith(error);
    const records = messageRecords(3);

    const results = await sink.write(records);

    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(results[1]).toMatchObject({ key: records[1]?.key, retryable: false });
    expect(view(results[1])).toMatchObject({ error: expect.stringMatching(/^code 2: invalid key/) });
  });
});

describe('isTransientMongoError', () => {
  it.each([
    [13, true],
    [11600, true],
    [99999, true],
    [2, false],
    [10334, false],
    [121, false],
  ])('a server error with code %i is transient: %s', (code, transient) => {
    expect(isTransientMongoError(new MongoServerError({ message: 'x', code }))).toBe(transient);
  });

  it('anything that is not a server answer is transient', () => {
    expect(isTransientMongoError(new MongoNetworkError('reset'))).toBe(true);
    expect(isTransientMongoError(new Error('?'))).toBe(true);
  });
});
