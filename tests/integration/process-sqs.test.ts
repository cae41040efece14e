/**
 * process-sqs against real peers: an SQS emulator (local-aws-sqs at volume, moto as a small
 * cross-check), a MongoDB-wire server (FerretDB, or MONGODB_URI) and S3 (moto).
 */
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { S3Client } from '@aws-sdk/client-s3';
import { processSqs } from '../../src/services/process-sqs.js';
import { silentLogger } from '../../src/utils/logger.js';
import { DLQ_ATTRIBUTES } from '../../src/aws/sqs-handler.js';
import { createBucket, createQueue, testS3Client, testSqsClient, type TestQueue } from '../helpers/aws.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';
import {
  isFerretDb,
  listKeys,
  mixedBodies,
  orderEvent,
  ORDER_SCHEMA,
  processEnv,
  processSettings,
  queueDepth,
  receiveAll,
  sendBodies,
  testDatabase,
  expectDeadLetterAttributes,
  PRODUCER_ATTRIBUTES,
  sendWithProducerAttributes,
} from '../helpers/sqs-fixtures.js';

const PEERS = [
  { peer: 'sqs' as const, volume: 1000 },
  { peer: 'moto' as const, volume: 40 },
];

for (const { peer, volume } of PEERS) {
  describeWithPeers(
    [peer, 'mongo', 'moto'],
    `process-sqs on ${peer === 'sqs' ? 'local-aws-sqs' : 'moto SQS'}`,
    () => {
      let sqs: SQSClient;
      let s3: S3Client;
      let db: Awaited<ReturnType<typeof testDatabase>>;

      beforeAll(async () => {
        sqs = testSqsClient(requirePeer(peer));
        s3 = testS3Client(requirePeer('moto'));
        db = await testDatabase(requirePeer('mongo'));
      });
      afterAll(async () => {
        sqs.destroy();
        s3.destroy();
        await db.drop();
      });

      async function setup(options: {
        collection: string;
        extra?: Record<string, string>;
        queue?: TestQueue;
      }) {
        const queue = options.queue ?? (await createQueue(sqs));
        const dlq = await createQueue(sqs);
        const bucket = await createBucket(s3);
        const env = processEnv({
          sqsEndpoint: requirePeer(peer),
          s3Endpoint: requirePeer('moto'),
          queueUrl: queue.url,
          mongoUri: db.uri,
          database: db.name,
          extra: {
            MONGODB_COLLECTION: options.collection,
            SQS_DLQ_URL: dlq.url,
            ARCHIVE_BUCKET: bucket,
            ARCHIVE_PREFIX: 'orders',
            ARCHIVE_WHEN: 'type=order.paid',
            MESSAGE_SCHEMA: ORDER_SCHEMA,
            MESSAGE_ID_FIELD: 'eventId',
            SQS_UNTIL_EMPTY: 'true',
            SQS_RETRY_BACKOFF: '1s',
            ...options.extra,
          },
        });
        return { queue, dlq, bucket, env, collection: db.client.db(db.name).collection(options.collection) };
      }

      it(`stores every valid message of ${volume} mixed ones exactly once, honours the archive rule and empties the queue`, async () => {
        // Prepare
        const t = await setup({ collection: 'mixed' });
        const mixed = mixedBodies(volume);
        await sendBodies(sqs, t.queue.url, mixed.bodies);

        // Act
        const summary = await processSqs(processSettings(t.env), { logger: silentLogger });

        // Assess
        expect(summary).toMatchObject({
          stopReason: 'queue-empty',
          received: volume,
          stored: mixed.valid.length,
          archived: mixed.archived.length,
          rejected: mixed.invalidJson + mixed.schemaInvalid,
          deadLettered: mixed.invalidJson + mixed.schemaInvalid,
          failed: 0,
          deleted: volume,
        });
        const keys = await t.collection.distinct('key');
        expect(keys.sort()).toEqual([...mixed.valid].sort());
        expect(await t.collection.countDocuments()).toBe(mixed.valid.length);
        const archived = await listKeys(s3, t.bucket, 'orders/');
        expect(
          archived.map((k) => k.replace(/^orders\/\d{4}\/\d{2}\/\d{2}\//, '').replace(/\.json$/, '')).sort(),
        ).toEqual([...mixed.archived].sort());
        expect(await queueDepth(sqs, t.queue.url)).toEqual({ visible: 0, inFlight: 0 });
        // Receive and delete both cost about one request per ten messages.
        if (peer === 'sqs') {
          expect(summary.sqsRequests['DeleteMessageBatch']).toBeLessThanOrEqual(Math.ceil(volume / 10) + 10);
        }
      });

      it('stores a message delivered twice, and a rerun over the same input, as one document and one archive object', async () => {
        // Prepare: the same event sent twice, and one message received and given back (a redelivery).
        const t = await setup({ collection: 'dupes' });
        const paid = JSON.stringify(orderEvent(3, { type: 'order.paid' }));
        const other = JSON.stringify(orderEvent(4, { type: 'order.created' }));
        await sendBodies(sqs, t.queue.url, [paid, paid, other]);
        const stolen = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: t.queue.url, MaxNumberOfMessages: 1, VisibilityTimeout: 0 }),
        );
        expect(stolen.Messages).toHaveLength(1);

        // Act: two full runs over the same input.
        const first = await processSqs(processSettings(t.env), { logger: silentLogger });
        await sendBodies(sqs, t.queue.url, [paid, other]);
        const second = await processSqs(processSettings(t.env), { logger: silentLogger });

        // Assess
        expect(first.stored).toBe(3);
        expect(second.stored).toBe(2);
        expect(await t.collection.countDocuments()).toBe(2);
        const doc = await t.collection.findOne({ key: 'evt-000003' });
        expect(doc?.['body']).toEqual(JSON.parse(paid));
        expect(await listKeys(s3, t.bucket)).toHaveLength(1);
        expect(await queueDepth(sqs, t.queue.url)).toEqual({ visible: 0, inFlight: 0 });
      });

      it('sends poison messages to the DLQ with their reason, and their neighbours are unaffected', async () => {
        // Prepare
        const t = await setup({ collection: 'poison' });
        const bodies = [
          JSON.stringify(orderEvent(1)),
          '{"eventId": "evt-000002", "type": ',
          JSON.stringify(orderEvent(3)),
          JSON.stringify({ ...orderEvent(4), currency: 'euro' }),
          JSON.stringify(orderEvent(5)),
        ];
        await sendBodies(sqs, t.queue.url, bodies);
        // A poison message that carries the producer's own attributes, which the DLQ copy keeps.
        const tagged = '{"eventId": "evt-000006", "tagged": ';
        const sent = await sendWithProducerAttributes(sqs, t.queue.url, tagged);
        const started = Date.now();

        // Act
        const summary = await processSqs(processSettings(t.env), { logger: silentLogger });
        const finished = Date.now();

        // Assess
        expect(summary).toMatchObject({ stored: 3, rejected: 3, deadLettered: 3, deleted: 6 });
        expect((await t.collection.distinct('key')).sort()).toEqual([
          'evt-000001',
          'evt-000003',
          'evt-000005',
        ]);
        const dead = await receiveAll(sqs, t.dlq.url);
        const reasons = Object.fromEntries(
          dead.map((m) => [m.Body, m.MessageAttributes?.[DLQ_ATTRIBUTES.reason]?.StringValue]),
        );
        expect(reasons[bodies[1] as string]).toMatch(/^invalid JSON: /);
        expect(reasons[bodies[3] as string]).toBe(
          'schema: /currency: must match pattern "^[A-Z]{3}$" (rule "pattern")',
        );
        expect(reasons[tagged]).toMatch(/^invalid JSON: /);
        for (const m of dead) {
          expectDeadLetterAttributes(m, {
            sourceQueue: t.queue.url,
            receiveCount: '1',
            from: started,
            to: finished,
          });
        }
        // Each copy names its own original.
        const originals = dead.map((m) => m.MessageAttributes?.[DLQ_ATTRIBUTES.messageId]?.StringValue);
        expect(new Set(originals).size).toBe(3);
        const copy = dead.find((m) => m.Body === tagged);
        expect(copy?.MessageAttributes?.[DLQ_ATTRIBUTES.messageId]?.StringValue).toBe(sent.MessageId);
        expect(copy?.MessageAttributes).toMatchObject(PRODUCER_ATTRIBUTES);
        expect(await queueDepth(sqs, t.queue.url)).toEqual({ visible: 0, inFlight: 0 });
      });

      it('a document the store refuses is a per-message permanent failure, never a crash', async () => {
        // Prepare: a field name with a dot; FerretDB refuses it, MongoDB 5+ may accept it.
        const t = await setup({ collection: 'refused' });
        const odd = JSON.stringify({ ...orderEvent(7), 'meta.source': 'pos' });
        await sendBodies(sqs, t.queue.url, [
          JSON.stringify(orderEvent(6)),
          odd,
          JSON.stringify(orderEvent(8)),
        ]);
        const refuses = await isFerretDb(db.client);

        // Act
        const summary = await processSqs(processSettings(t.env), { logger: silentLogger });

        // Assess
        expect((await t.collection.distinct('key')).sort()).toEqual(
          refuses ? ['evt-000006', 'evt-000008'] : ['evt-000006', 'evt-000007', 'evt-000008'],
        );
        expect(summary.deleted).toBe(3);
        if (refuses) {
          const [dead] = await receiveAll(sqs, t.dlq.url);
          expect(dead?.MessageAttributes?.[DLQ_ATTRIBUTES.reason]?.StringValue).toMatch(
            /^mongodb: .*must not contain '\.'/,
          );
        }
      });
    },
  );
}
