/**
 * The Lambda handler against real peers: messages go through local-aws-sqs, are received with the
 * SDK and handed over in the event shape the Lambda service builds; the handler stores them in
 * FerretDB (or MONGODB_URI) and moto S3, dead-letters to a DLQ on local-aws-sqs, and changes
 * visibility on the queue URL it derives from the event source ARN.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createHandler, type ManagedLambdaHandler } from '../../src/aws/lambda-entrypoint.js';
import { DLQ_ATTRIBUTES } from '../../src/aws/sqs-handler.js';
import { parseMongoUri } from '../../src/config/mongo-uri.js';
import { createLogger, silentLogger, type Logger } from '../../src/utils/logger.js';
import {
  createBucket,
  createQueue,
  TEST_CREDENTIALS,
  TEST_REGION,
  testS3Client,
  testSqsClient,
  uniqueName,
  type TestQueue,
} from '../helpers/aws.js';
import { fakeContext, settleLikeLambda, sqsEventFromMessages } from '../helpers/lambda-events.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';
import { CaptureStream } from '../helpers/streams.js';
import {
  listKeys,
  isFerretDb,
  mixedBodies,
  orderEvent,
  ORDER_SCHEMA,
  queueDepth,
  receiveAll,
  sendBodies,
  testDatabase,
  expectDeadLetterAttributes,
  PRODUCER_ATTRIBUTES,
  sendWithProducerAttributes,
} from '../helpers/sqs-fixtures.js';

/** The handler dead-letters only what fails to parse or to validate. */
const DEAD_LETTER_REASON = /^(invalid JSON|schema): /;

describeWithPeers(
  ['sqs', 'mongo', 'moto'],
  'Lambda handler on local-aws-sqs, MongoDB wire and moto S3',
  () => {
    let sqs: SQSClient;
    let s3: S3Client;
    let db: Awaited<ReturnType<typeof testDatabase>>;
    const handlers: ManagedLambdaHandler[] = [];

    beforeAll(async () => {
      sqs = testSqsClient(requirePeer('sqs'));
      s3 = testS3Client(requirePeer('moto'));
      db = await testDatabase(requirePeer('mongo'));
    });
    afterEach(async () => {
      await Promise.all(handlers.splice(0).map((handler) => handler.close()));
    });
    afterAll(async () => {
      sqs.destroy();
      s3.destroy();
      await db.drop();
    });

    async function setup(options: {
      collection: string;
      fifo?: boolean;
      dlq?: boolean;
      extra?: Record<string, string>;
      logger?: Logger;
    }) {
      const fifo = options.fifo ?? false;
      const queue = await createQueue(sqs, { fifo, visibilityTimeout: 60 });
      const dlq = options.dlq === false ? undefined : await createQueue(sqs, { fifo });
      const bucket = await createBucket(s3);
      // The function's environment: the same variables as process-sqs, and no SQS_QUEUE_URL, so the
      // handler derives the queue URL from the records' eventSourceARN and the SQS endpoint.
      const env: Record<string, string> = {
        AWS_REGION: TEST_REGION,
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_SQS: requirePeer('sqs'),
        AWS_ENDPOINT_URL_S3: requirePeer('moto'),
        MONGODB_URI: db.uri,
        MONGODB_DATABASE: db.name,
        MONGODB_COLLECTION: options.collection,
        ARCHIVE_BUCKET: bucket,
        ARCHIVE_PREFIX: 'orders',
        ARCHIVE_WHEN: 'type=order.paid',
        MESSAGE_SCHEMA: ORDER_SCHEMA,
        MESSAGE_ID_FIELD: 'eventId',
        ...(dlq ? { SQS_DLQ_URL: dlq.url } : {}),
        ...options.extra,
      };
      const handler = createHandler({ env, logger: options.logger ?? silentLogger });
      handlers.push(handler);
      return {
        queue,
        dlq,
        bucket,
        handler,
        collection: db.client.db(db.name).collection(options.collection),
      };
    }

    /** Receives what is visible and invokes the handler with events of up to 10 records, as Lambda does. */
    async function deliver(
      queue: TestQueue,
      handler: ManagedLambdaHandler,
    ): Promise<Array<{ event: SQSEvent; response: SQSBatchResponse }>> {
      const messages = await receiveAll(sqs, queue.url, 60);
      const invocations: Array<{ event: SQSEvent; response: SQSBatchResponse }> = [];
      for (let start = 0; start < messages.length; start += 10) {
        const event = sqsEventFromMessages(messages.slice(start, start + 10), queue.arn);
        const response = await handler(event, fakeContext({ timeoutMs: 30_000 }));
        await settleLikeLambda(sqs, queue.url, event, response);
        invocations.push({ event, response });
      }
      return invocations;
    }

    it('stores every valid message, archives the chosen ones, dead-letters the poison ones and reports no failures', async () => {
      // Prepare
      const t = await setup({ collection: 'lambda_mixed' });
      const mixed = mixedBodies(40);
      await sendBodies(sqs, t.queue.url, mixed.bodies);
      const started = Date.now();

      // Act
      const invocations = await deliver(t.queue, t.handler);
      const finished = Date.now();

      // Assess
      expect(invocations.map((i) => i.event.Records.length)).toEqual([10, 10, 10, 10]);
      expect(invocations.flatMap((i) => i.response.batchItemFailures)).toEqual([]);
      expect(((await t.collection.distinct('key')) as string[]).sort()).toEqual([...mixed.valid].sort());
      expect(await t.collection.countDocuments()).toBe(mixed.valid.length);
      const stored = await t.collection.findOne({ key: mixed.valid[0] });
      expect(stored).toMatchObject({ receiveCount: 1, body: { eventId: mixed.valid[0] } });
      const archived = await listKeys(s3, t.bucket, 'orders/');
      expect(
        archived.map((k) => k.replace(/^orders\/\d{4}\/\d{2}\/\d{2}\/(.*)\.json$/, '$1')).sort(),
      ).toEqual([...mixed.archived].sort());
      const dead = await receiveAll(sqs, t.dlq?.url as string);
      expect(dead).toHaveLength(mixed.invalidJson + mixed.schemaInvalid);
      for (const message of dead) {
        expectDeadLetterAttributes(message, {
          sourceQueue: t.queue.url,
          receiveCount: '1',
          from: started,
          to: finished,
          reason: DEAD_LETTER_REASON,
        });
      }
      // Each copy names its own original, by the id and body the function received.
      const received = new Map(
        invocations.flatMap((i) => i.event.Records).map((r) => [r.messageId, r.body] as const),
      );
      const originals = dead.map((m) => m.MessageAttributes?.[DLQ_ATTRIBUTES.messageId]?.StringValue ?? '');
      expect(new Set(originals).size).toBe(dead.length);
      for (const [i, message] of dead.entries()) expect(received.get(originals[i] ?? '')).toBe(message.Body);
      expect(await queueDepth(sqs, t.queue.url)).toEqual({ visible: 0, inFlight: 0 });
    });

    it("keeps the producer's message attributes on the DLQ copy, beside aws-msg's own", async () => {
      // Prepare
      const t = await setup({ collection: 'lambda_dlq_attributes' });
      const poison = '{"eventId": "evt-000009", ';
      const sent = await sendWithProducerAttributes(sqs, t.queue.url, poison);
      const started = Date.now();

      // Act
      const [invocation] = await deliver(t.queue, t.handler);
      const finished = Date.now();

      // Assess
      expect(invocation?.response.batchItemFailures).toEqual([]);
      const [copy, ...others] = await receiveAll(sqs, t.dlq?.url as string);
      expect(others).toEqual([]);
      expect(copy?.Body).toBe(poison);
      expectDeadLetterAttributes(copy as Message, {
        sourceQueue: t.queue.url,
        receiveCount: '1',
        from: started,
        to: finished,
        reason: DEAD_LETTER_REASON,
      });
      expect(copy?.MessageAttributes).toMatchObject({
        [DLQ_ATTRIBUTES.messageId]: { StringValue: sent.MessageId },
        ...PRODUCER_ATTRIBUTES,
      });
      expect(await queueDepth(sqs, t.queue.url)).toEqual({ visible: 0, inFlight: 0 });
    });

    it('a redelivered batch leaves one document and one archive object per message', async () => {
      // Prepare
      const t = await setup({ collection: 'lambda_redelivery' });
      const bodies = [1, 2, 3].map((i) => JSON.stringify(orderEvent(i, { type: 'order.paid' })));
      await sendBodies(sqs, t.queue.url, bodies);
      const messages = await receiveAll(sqs, t.queue.url, 60);
      const event = sqsEventFromMessages(messages, t.queue.arn);

      // Act: the same event twice, as when Lambda retries a batch whose invocation timed out.
      const first = await t.handler(event, fakeContext());
      const second = await t.handler(event, fakeContext());

      // Assess
      expect(first.batchItemFailures).toEqual([]);
      expect(second.batchItemFailures).toEqual([]);
      expect(await t.collection.countDocuments()).toBe(3);
      expect(await listKeys(s3, t.bucket, 'orders/')).toHaveLength(3);
    });

    it('without a DLQ reports poison messages as failures and hands them back after the poison backoff', async () => {
      // Prepare: a zero backoff makes the handed-back messages visible at once.
      const t = await setup({ collection: 'lambda_no_dlq', dlq: false, extra: { SQS_POISON_BACKOFF: '0s' } });
      const good = [JSON.stringify(orderEvent(1)), JSON.stringify(orderEvent(2))];
      const poison = ['{"eventId": ', JSON.stringify({ ...orderEvent(3), currency: 'euro' })];
      await sendBodies(sqs, t.queue.url, [...good, ...poison]);

      // Act
      const [invocation] = await deliver(t.queue, t.handler);

      // Assess
      const failedIds = new Set(invocation?.response.batchItemFailures.map((f) => f.itemIdentifier));
      const failedBodies = invocation?.event.Records.filter((r) => failedIds.has(r.messageId)).map(
        (r) => r.body,
      );
      expect(failedBodies?.sort()).toEqual([...poison].sort());
      expect(((await t.collection.distinct('key')) as string[]).sort()).toEqual(['evt-000001', 'evt-000002']);
      const again = await receiveAll(sqs, t.queue.url, 60);
      expect(again.map((m) => m.Body).sort()).toEqual([...poison].sort());
      // A redelivery (local-aws-sqs counts a visibility change to 0 as a receive, so not exactly 2).
      for (const m of again)
        expect(Number(m.Attributes?.['ApproximateReceiveCount'])).toBeGreaterThanOrEqual(2);
    });

    it('FIFO: a failed message fails the rest of its group, which comes back in order; other groups are stored', async () => {
      // Prepare: group a has a poison message in the middle; the FIFO DLQ takes it.
      const t = await setup({ collection: 'lambda_fifo', fifo: true });
      const a = [orderEvent(1), orderEvent(2), orderEvent(3)].map((e) => JSON.stringify(e));
      a[1] = '{"eventId": "evt-000002", ';
      const b = [orderEvent(11), orderEvent(12)].map((e) => JSON.stringify(e));
      const bodies = [a[0], b[0], a[1], b[1], a[2]] as string[];
      const groups = ['a', 'b', 'a', 'b', 'a'];
      await sendBodies(sqs, t.queue.url, bodies, { groupId: (i) => groups[i] as string });

      // Act
      const [first] = await deliver(t.queue, t.handler);
      const [second] = await deliver(t.queue, t.handler);

      // Assess: the poison message was dead-lettered (handled), its successor released unprocessed.
      const bodyOf = (id: string) => first?.event.Records.find((r) => r.messageId === id)?.body;
      expect(first?.response.batchItemFailures.map((f) => bodyOf(f.itemIdentifier))).toEqual([a[2]]);
      expect(second?.event.Records.map((r) => r.body)).toEqual([a[2]]);
      expect(second?.response.batchItemFailures).toEqual([]);
      expect(((await t.collection.distinct('key')) as string[]).sort()).toEqual([
        'evt-000001',
        'evt-000003',
        'evt-000011',
        'evt-000012',
      ]);
      expect((await receiveAll(sqs, t.dlq?.url as string)).map((m) => m.Body)).toEqual([a[1]]);
      expect(await queueDepth(sqs, t.queue.url)).toEqual({ visible: 0, inFlight: 0 });
    });

    it('reads the MongoDB URI from MONGODB_URI_SECRET_ARN (moto Secrets Manager) and never logs its password', async () => {
      // Prepare: the URI with a password. FerretDB (no auth set up) takes any PLAIN credentials;
      // another MongoDB peer is used with its own URI, password or not.
      const password = `pw-${uniqueName('secret')}`;
      const ferret = await isFerretDb(db.client);
      const uri = ferret
        ? `${db.uri.replace('mongodb://', `mongodb://app:${password}@`).replace(/\/?$/, '/')}?authMechanism=PLAIN`
        : db.uri;
      const secretPassword = ferret ? password : parseMongoUri(db.uri).password;
      const secrets = new SecretsManagerClient({
        region: TEST_REGION,
        endpoint: requirePeer('moto'),
        credentials: TEST_CREDENTIALS,
      });
      const created = await secrets.send(
        new CreateSecretCommand({ Name: uniqueName('aws-msg/mongodb-uri'), SecretString: uri }),
      );
      secrets.destroy();
      const log = new CaptureStream();
      const t = await setup({
        collection: 'lambda_secret',
        extra: {
          MONGODB_URI: '',
          MONGODB_URI_SECRET_ARN: created.ARN as string,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: requirePeer('moto'),
          LOG_LEVEL: 'debug',
        },
        logger: createLogger({ format: 'json', level: 'debug', stream: log }),
      });
      const bodies = [1, 2, 3].map((i) => JSON.stringify(orderEvent(i, { type: 'order.created' })));
      await sendBodies(sqs, t.queue.url, bodies);

      // Act
      const invocations = await deliver(t.queue, t.handler);

      // Assess
      expect(invocations.flatMap((i) => i.response.batchItemFailures)).toEqual([]);
      expect(await t.collection.countDocuments()).toBe(3);
      expect(log.text()).toContain('lambda_ready');
      if (secretPassword !== undefined) {
        expect(log.text()).not.toContain(secretPassword);
        expect(log.text()).not.toContain(encodeURIComponent(secretPassword));
      }
    });
  },
);
