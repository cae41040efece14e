/**
 * The built deployment package under a real Lambda runtime: `npm run build:lambda`'s zip, unpacked,
 * loaded by aws-lambda-ric on Node.js 22 inside the AWS Lambda Runtime Interface Emulator, and
 * invoked over HTTP with SQS events made from messages received on local-aws-sqs. The function
 * reaches FerretDB (or MONGODB_URI), moto S3 and local-aws-sqs through its environment variables.
 */
import { rmSync } from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { DLQ_ATTRIBUTES } from '../../src/aws/sqs-handler.js';
import {
  createBucket,
  createQueue,
  TEST_CREDENTIALS,
  TEST_REGION,
  testS3Client,
  testSqsClient,
  type TestQueue,
} from '../helpers/aws.js';
import { settleLikeLambda, sqsEventFromMessages } from '../helpers/lambda-events.js';
import {
  buildAndUnpackLambda,
  startLambdaFunction,
  type RunningFunction,
} from '../helpers/lambda-runtime.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';
import { lambdaRuntimeFiles, type LambdaRuntimeFiles } from '../helpers/services.js';
import {
  listKeys,
  orderEvent,
  queueDepth,
  receiveAll,
  sendBodies,
  testDatabase,
} from '../helpers/sqs-fixtures.js';

describeWithPeers(
  ['lambda-runtime', 'sqs', 'mongo', 'moto'],
  'the Lambda bundle under aws-lambda-ric and the Runtime Interface Emulator',
  () => {
    let runtime: LambdaRuntimeFiles;
    let taskRoot: string;
    let sqs: SQSClient;
    let s3: S3Client;
    let db: Awaited<ReturnType<typeof testDatabase>>;
    const running: RunningFunction[] = [];

    beforeAll(async () => {
      const files = lambdaRuntimeFiles({ AWS_MSG_CACHE_DIR: requirePeer('lambda-runtime') });
      if (!files) throw new Error('the Lambda runtime pieces disappeared');
      runtime = files;
      taskRoot = buildAndUnpackLambda();
      sqs = testSqsClient(requirePeer('sqs'));
      s3 = testS3Client(requirePeer('moto'));
      db = await testDatabase(requirePeer('mongo'));
    }, 120_000);
    afterEach(async () => {
      await Promise.all(running.splice(0).map((fn) => fn.stop()));
    });
    afterAll(async () => {
      sqs?.destroy();
      s3?.destroy();
      await db?.drop();
      if (taskRoot) rmSync(taskRoot, { recursive: true, force: true });
    });

    /** The function's environment variables, as template.yaml would set them (plus emulator endpoints). */
    function functionEnv(collection: string, extra: Record<string, string>): Record<string, string> {
      return {
        AWS_REGION: TEST_REGION,
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_SQS: requirePeer('sqs'),
        AWS_ENDPOINT_URL_S3: requirePeer('moto'),
        MONGODB_URI: db.uri,
        MONGODB_DATABASE: db.name,
        MONGODB_COLLECTION: collection,
        // A path inside the package, resolved from LAMBDA_TASK_ROOT as on Lambda.
        MESSAGE_SCHEMA: 'schemas/order-event.schema.json',
        MESSAGE_ID_FIELD: 'eventId',
        LOG_LEVEL: 'info',
        ...extra,
      };
    }

    async function start(env: Record<string, string>): Promise<RunningFunction> {
      const fn = await startLambdaFunction({ runtime, taskRoot, env, timeoutSeconds: 30 });
      running.push(fn);
      return fn;
    }

    async function receiveEvent(queue: TestQueue) {
      return sqsEventFromMessages(await receiveAll(sqs, queue.url, 60), queue.arn);
    }

    it('stores, archives and dead-letters a batch, and a warm second invocation reuses the open stores', async () => {
      // Prepare
      const queue = await createQueue(sqs, { visibilityTimeout: 60 });
      const dlq = await createQueue(sqs);
      const bucket = await createBucket(s3);
      const fn = await start(
        functionEnv('runtime_mixed', {
          SQS_DLQ_URL: dlq.url,
          ARCHIVE_BUCKET: bucket,
          ARCHIVE_PREFIX: 'orders',
          ARCHIVE_WHEN: 'type=order.paid',
        }),
      );
      const good = [1, 2, 3, 4, 5].map((i) => JSON.stringify(orderEvent(i)));
      const poison = ['{"eventId": "evt-000006", ', JSON.stringify({ ...orderEvent(7), amount: 'lots' })];
      await sendBodies(sqs, queue.url, [...good.slice(0, 3), ...poison]);
      const firstEvent = await receiveEvent(queue);

      // Act
      const first = await fn.invoke(firstEvent);
      await settleLikeLambda(sqs, queue.url, firstEvent, first.body as SQSBatchResponse);
      await sendBodies(sqs, queue.url, good.slice(3));
      const secondEvent = await receiveEvent(queue);
      const second = await fn.invoke(secondEvent);
      await settleLikeLambda(sqs, queue.url, secondEvent, second.body as SQSBatchResponse);

      // Assess
      expect(first).toEqual({ status: 200, body: { batchItemFailures: [] } });
      expect(second).toEqual({ status: 200, body: { batchItemFailures: [] } });
      const collection = db.client.db(db.name).collection('runtime_mixed');
      expect(((await collection.distinct('key')) as string[]).sort()).toEqual([
        'evt-000001',
        'evt-000002',
        'evt-000003',
        'evt-000004',
        'evt-000005',
      ]);
      // orderEvent(1) and orderEvent(5) are order.paid.
      expect((await listKeys(s3, bucket, 'orders/')).map((k) => k.replace(/^.*\//, '')).sort()).toEqual([
        'evt-000001.json',
        'evt-000005.json',
      ]);
      const dead = await receiveAll(sqs, dlq.url);
      expect(dead.map((m) => m.Body).sort()).toEqual([...poison].sort());
      for (const m of dead) {
        expect(m.MessageAttributes?.[DLQ_ATTRIBUTES.reason]?.StringValue).toMatch(/^(invalid JSON|schema): /);
      }
      expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
      // One cold start: the stores were opened once and the second invocation reused them.
      expect(fn.output().match(/"event":"lambda_ready"/g)).toHaveLength(1);
      expect(fn.output().match(/"event":"lambda_batch_done"/g)).toHaveLength(2);
    });

    it('without a DLQ reports the poison messages in batchItemFailures and hands them back', async () => {
      // Prepare
      const queue = await createQueue(sqs, { visibilityTimeout: 60 });
      const fn = await start(functionEnv('runtime_no_dlq', { SQS_POISON_BACKOFF: '0s' }));
      const good = JSON.stringify(orderEvent(21));
      const poison = '{"eventId": ';
      await sendBodies(sqs, queue.url, [good, poison]);
      const event = await receiveEvent(queue);
      const poisonId = event.Records.find((r) => r.body === poison)?.messageId;

      // Act
      const response = await fn.invoke(event);
      await settleLikeLambda(sqs, queue.url, event, response.body as SQSBatchResponse);

      // Assess
      expect(response).toEqual({ status: 200, body: { batchItemFailures: [{ itemIdentifier: poisonId }] } });
      const collection = db.client.db(db.name).collection('runtime_no_dlq');
      expect(await collection.distinct('key')).toEqual(['evt-000021']);
      expect((await receiveAll(sqs, queue.url)).map((m) => m.Body)).toEqual([poison]);
    });

    it('a configuration problem fails the invocation and logs one line per problem', async () => {
      // Prepare
      const queue = await createQueue(sqs);
      const fn = await start({
        AWS_REGION: TEST_REGION,
        SQS_DLQ_URL: 'not-a-url',
        LAMBDA_TIMEOUT_MARGIN: 'soon',
      });
      await sendBodies(sqs, queue.url, [JSON.stringify(orderEvent(31))]);
      const event = await receiveEvent(queue);

      // Act
      const response = await fn.invoke(event);

      // Assess
      expect(response.body).toMatchObject({ errorType: 'ConfigError' });
      const problems = fn
        .output()
        .split('\n')
        .filter((line) => line.includes('"event":"lambda_config_invalid"'));
      expect(problems).toEqual([
        expect.stringContaining('SQS_DLQ_URL: got \\"not-a-url\\"'),
        expect.stringContaining('LAMBDA_TIMEOUT_MARGIN: got \\"soon\\"'),
        expect.stringContaining('no store configured'),
      ]);
    });
  },
);
