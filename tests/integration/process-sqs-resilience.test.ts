/**
 * process-sqs when things go wrong: a store outage mid-run, FIFO ordering with failures, and a
 * message that takes longer than its visibility timeout.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Collection, Document } from 'mongodb';
import { SqsQueue } from '../../src/aws/sqs-handler.js';
import type { ItemResult, MessageRecord, Sink } from '../../src/database/sink.js';
import { MongoSink } from '../../src/database/mongodb-connector.js';
import { MessageProcessor } from '../../src/services/message-processor.js';
import { processSqs } from '../../src/services/process-sqs.js';
import { QueueRunner, type QueueRunnerOptions } from '../../src/services/queue-runner.js';
import { compileSchema } from '../../src/utils/file-reader.js';
import { silentLogger } from '../../src/utils/logger.js';
import { createQueue, testSqsClient } from '../helpers/aws.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';
import { startFerretDb } from '../helpers/services.js';
import {
  orderEvent,
  processEnv,
  processSettings,
  queueDepth,
  receiveAll,
  sendBodies,
  testDatabase,
} from '../helpers/sqs-fixtures.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const anyObject = compileSchema<unknown>({ type: 'object' }, 'test');

/** Records the order in which a sink confirmed records, per FIFO group. */
class RecordingSink implements Sink {
  readonly name: string;
  readonly confirmed: MessageRecord[] = [];
  failOnce = new Set<string>();

  constructor(private readonly inner: Sink) {
    this.name = inner.name;
  }
  open(): Promise<void> {
    return this.inner.open();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  async write(batch: readonly MessageRecord[]): Promise<ItemResult[]> {
    const failing = batch.filter((r) => this.failOnce.delete(r.key));
    const rest = batch.filter((r) => !failing.includes(r));
    const results = await this.inner.write(rest);
    for (const result of results)
      if (result.ok) this.confirmed.push(rest.find((r) => r.key === result.key) as MessageRecord);
    return [
      ...results,
      ...failing.map((r): ItemResult => ({
        key: r.key,
        ok: false,
        error: 'injected timeout',
        retryable: true,
      })),
    ];
  }
}

class SlowSink implements Sink {
  readonly name = 'slow';
  constructor(
    private readonly inner: Sink,
    private readonly delayMs: number,
  ) {}
  open(): Promise<void> {
    return this.inner.open();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  async write(batch: readonly MessageRecord[]): Promise<ItemResult[]> {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return this.inner.write(batch);
  }
}

function runnerOptions(
  queue: SqsQueue,
  processor: MessageProcessor,
  overrides: Partial<QueueRunnerOptions>,
): QueueRunnerOptions {
  return {
    queue,
    processor,
    fifo: false,
    hasDlq: false,
    receivers: 2,
    batchSize: 10,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 30,
    heartbeatIntervalMs: 10_000,
    maxInFlight: 100,
    untilEmpty: true,
    shutdownTimeoutMs: 10_000,
    retryBackoffMs: 1000,
    retryBackoffMaxMs: 2000,
    poisonBackoffMs: 60_000,
    storeBatchSize: 20,
    storeBatchWaitMs: 5,
    logger: silentLogger,
    ...overrides,
  };
}

// local-aws-sqs at volume; moto as a small cross-check. Only moto withholds a FIFO group while
// one of its messages is in flight, as SQS does; without that lock no consumer can keep a group in
// order across a failure (the failed message and its successors reappear in whatever order their
// visibility timeouts end), so on local-aws-sqs the FIFO case runs without a failure.
const PEERS = [
  { peer: 'sqs' as const, total: 300, perGroup: 15, groupLock: false },
  { peer: 'moto' as const, total: 40, perGroup: 6, groupLock: true },
];

for (const { peer, total, perGroup, groupLock } of PEERS) {
  describeWithPeers(
    [peer, 'mongo'],
    `process-sqs resilience on ${peer === 'sqs' ? 'local-aws-sqs' : 'moto SQS'}`,
    () => {
      let sqs: SQSClient;
      let db: Awaited<ReturnType<typeof testDatabase>>;

      beforeAll(async () => {
        sqs = testSqsClient(requirePeer(peer));
        db = await testDatabase(requirePeer('mongo'));
      });
      afterAll(async () => {
        sqs.destroy();
        await db.drop();
      });

      it('MongoDB stopped mid-run: nothing that failed to store is deleted, and after a restart everything is stored', async () => {
        // Prepare: our own FerretDB that we can stop (or a proxy in front of MONGODB_URI).
        const ferret =
          process.env['AWS_MSG_TEST_FERRETDB_BIN'] && !process.env['MONGODB_URI']
            ? await startFerretDb(process.env['AWS_MSG_TEST_FERRETDB_BIN'])
            : undefined;
        const upstream = new URL(ferret?.endpoint ?? requirePeer('mongo'));
        const proxy = ferret
          ? undefined
          : await TcpProxy.start({ host: upstream.hostname, port: Number(upstream.port || 27017) });
        const outage = {
          uri: ferret
            ? `${ferret.endpoint}?serverSelectionTimeoutMS=1000`
            : `mongodb://127.0.0.1:${proxy?.port}/?serverSelectionTimeoutMS=1000&directConnection=true`,
          down: () => (ferret ? ferret.kill() : (proxy as TcpProxy).down()),
          up: () => (ferret ? ferret.start() : (proxy as TcpProxy).up()),
        };
        const queue = await createQueue(sqs);
        await sendBodies(
          sqs,
          queue.url,
          Array.from({ length: total }, (_, i) => JSON.stringify(orderEvent(i))),
        );
        const env = processEnv({
          sqsEndpoint: requirePeer(peer),
          queueUrl: queue.url,
          mongoUri: outage.uri,
          database: 'outage',
          extra: {
            MESSAGE_ID_FIELD: 'eventId',
            SQS_UNTIL_EMPTY: 'true',
            SQS_RECEIVERS: '1',
            SQS_MAX_IN_FLIGHT: '10',
            STORE_BATCH_SIZE: '10',
            STORE_BATCH_WAIT: '30ms',
            SQS_RETRY_BACKOFF: '2s',
            SQS_RETRY_BACKOFF_MAX: '2s',
          },
        });
        const observer = await testDatabase(ferret ? ferret.endpoint : requirePeer('mongo'));
        const collection = observer.client.db('outage').collection('messages');
        try {
          // Act 1: stop the store once about a quarter is stored.
          const run1 = processSqs(processSettings(env), { logger: silentLogger });
          for (let i = 0; i < 500 && (await collection.countDocuments().catch(() => 0)) < total / 4; i++) {
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          await outage.down();
          const first = await run1;
          // Assess 1: only confirmed messages were deleted; the rest wait on the queue.
          await outage.up();
          expect(first.stopReason).toBe('store-unavailable');
          expect(first.failed).toBeGreaterThan(0);
          expect(first.deleted).toBe(first.stored);
          expect(first.stored).toBeLessThan(total);
          const keysAfterOutage = new Set(await collection.distinct('key'));
          expect(keysAfterOutage.size).toBeGreaterThanOrEqual(first.stored);

          // Act 2: the store is back; once the backoff has passed, a rerun stores the rest.
          await new Promise((resolve) => setTimeout(resolve, 2500));
          const second = await processSqs(processSettings(env), { logger: silentLogger });

          // Assess 2: every message not deleted in run 1 was still on the queue for run 2.
          expect(second.stored).toBe(total - first.deleted);
          expect(await collection.countDocuments()).toBe(total);
          expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
        } finally {
          await observer.drop();
          await proxy?.down();
          await ferret?.stop();
        }
      }, 120_000);

      it(`FIFO: order is kept within each group${groupLock ? ', also after a message of a group fails' : ''}`, async () => {
        // Prepare
        const queue = await createQueue(sqs, { fifo: true });
        const groups = ['A', 'B', 'C', 'D'];
        const bodies: string[] = [];
        for (let n = 0; n < perGroup; n++) {
          for (const g of groups)
            bodies.push(JSON.stringify({ ...orderEvent(bodies.length), customerId: g, seq: n }));
        }
        await sendBodies(sqs, queue.url, bodies, { groupId: (i) => groups[i % groups.length] as string });
        const collection: Collection<Document> = db.client.db(db.name).collection('fifo');
        const recorder = new RecordingSink(
          new MongoSink({ uri: db.uri, database: db.name, collection: 'fifo' }),
        );
        const failing = Math.floor(perGroup / 3); // group B fails once at this position
        if (groupLock)
          recorder.failOnce.add(JSON.parse(bodies[groups.length * failing + 1] as string).eventId as string);
        const processor = new MessageProcessor({
          sinks: [recorder],
          validator: anyObject,
          idField: 'eventId',
        });
        await processor.open();
        const sqsQueue = new SqsQueue({ sqs, queueUrl: queue.url });

        // One receiver: SQS never hands one group to two concurrent receives, but under load moto's
        // group lock can race, which would test moto, not us.
        const fifoOptions = { fifo: true, receivers: 1 };
        // Act: the first run stores everything but group B from its failure on; later runs (as
        // cron would start them) pick up B once its backoff has passed.
        const first = await new QueueRunner(runnerOptions(sqsQueue, processor, fifoOptions)).run();
        let stored = first.stored;
        for (let run = 0; run < 20 && stored < bodies.length; run++) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          stored += (await new QueueRunner(runnerOptions(sqsQueue, processor, fifoOptions)).run()).stored;
        }
        await processor.close();

        // Assess
        expect(first.failed).toBe(groupLock ? 1 : 0);
        expect(stored).toBe(bodies.length);
        for (const g of groups) {
          const order = recorder.confirmed
            .filter((r) => (r.body as { customerId: string }).customerId === g)
            .map((r) => (r.body as { seq: number }).seq);
          expect(order).toEqual(Array.from({ length: perGroup }, (_, n) => n));
        }
        expect(await collection.countDocuments()).toBe(bodies.length);
        expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
      }, 60_000);

      it('a message that takes longer than its visibility timeout is not redelivered while in work (heartbeat)', async () => {
        // Prepare: visibility 2 s, processing 5 s, heartbeat every 500 ms.
        const queue = await createQueue(sqs);
        await sendBodies(sqs, queue.url, [JSON.stringify(orderEvent(1))]);
        const slow = new SlowSink(
          new MongoSink({ uri: db.uri, database: db.name, collection: 'slow' }),
          5000,
        );
        const processor = new MessageProcessor({ sinks: [slow], validator: anyObject, idField: 'eventId' });
        await processor.open();
        const runner = new QueueRunner(
          runnerOptions(new SqsQueue({ sqs, queueUrl: queue.url }), processor, {
            visibilityTimeoutSeconds: 2,
            heartbeatIntervalMs: 500,
            receivers: 1,
          }),
        );

        // Act: run it, and meanwhile poll the queue as a competing consumer would.
        const run = runner.run();
        const stolen: string[] = [];
        for (let i = 0; i < 8; i++) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          stolen.push(...(await receiveAll(sqs, queue.url, 1)).map((m) => m.MessageId as string));
        }
        const result = await run;
        await processor.close();

        // Assess
        expect(stolen).toEqual([]);
        expect(result).toMatchObject({ stored: 1, deleted: 1 });
        expect(result.heartbeats).toBeGreaterThanOrEqual(2);
        const doc = await db.client.db(db.name).collection('slow').findOne({ key: 'evt-000001' });
        expect(doc?.['receiveCount']).toBe(1);
      }, 30_000);
    },
  );
}
