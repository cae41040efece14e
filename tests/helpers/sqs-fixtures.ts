/** SQS and store fixtures for process-sqs integration tests. */
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type Message,
  type MessageAttributeValue,
  type SendMessageCommandOutput,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { MongoClient } from 'mongodb';
import pLimit from 'p-limit';
import { DLQ_ATTRIBUTES } from '../../src/aws/sqs-handler.js';
import { loadProcessSqsSettings, type ProcessSqsSettings } from '../../src/config/config-loader.js';
import { REPO_ROOT } from './cli.js';
import { TEST_CREDENTIALS, TEST_REGION, uniqueName } from './aws.js';
import { join } from 'node:path';

export const ORDER_SCHEMA = join(REPO_ROOT, 'schemas', 'order-event.schema.json');

export interface OrderEvent {
  eventId: string;
  type: string;
  orderId: string;
  customerId: string;
  amount: number;
  currency: string;
  occurredAt: string;
  seq?: number;
}

export function orderEvent(i: number, overrides: Partial<OrderEvent> = {}): OrderEvent {
  const types = ['order.created', 'order.paid', 'order.shipped', 'order.refunded'];
  return {
    eventId: `evt-${String(i).padStart(6, '0')}`,
    type: types[i % types.length] as string,
    orderId: `ORD-${100000 + Math.floor(i / 2)}`,
    customerId: `CUST-${String(i % 17).padStart(4, '0')}`,
    amount: Math.round(((i * 37) % 2000) * 100) / 100,
    currency: 'EUR',
    occurredAt: new Date(Date.UTC(2026, 11, 3, 8, 0, i % 60)).toISOString(),
    ...overrides,
  };
}

export interface MixedBatch {
  bodies: string[];
  /** eventIds of the valid messages. */
  valid: string[];
  /** eventIds the archive rule `type=order.paid` selects. */
  archived: string[];
  invalidJson: number;
  schemaInvalid: number;
}

/** `n` bodies: every 20th is broken JSON, every 20th (offset 10) breaks the schema, the rest are valid. */
export function mixedBodies(n: number, start = 0): MixedBatch {
  const batch: MixedBatch = { bodies: [], valid: [], archived: [], invalidJson: 0, schemaInvalid: 0 };
  for (let i = start; i < start + n; i++) {
    if (i % 20 === 0) {
      batch.bodies.push(`{"eventId": "evt-${i}", "type": `);
      batch.invalidJson++;
    } else if (i % 20 === 10) {
      batch.bodies.push(JSON.stringify({ ...orderEvent(i), amount: 'lots' }));
      batch.schemaInvalid++;
    } else {
      const event = orderEvent(i);
      batch.bodies.push(JSON.stringify(event));
      batch.valid.push(event.eventId);
      if (event.type === 'order.paid') batch.archived.push(event.eventId);
    }
  }
  return batch;
}

/**
 * Sends raw bodies, 10 per SendMessageBatch, 8 batches at a time; one at a time for a FIFO queue,
 * whose order is the order in which the batches arrive.
 */
export async function sendBodies(
  client: SQSClient,
  queueUrl: string,
  bodies: readonly string[],
  options: { groupId?: (index: number) => string } = {},
): Promise<void> {
  const limit = pLimit(options.groupId ? 1 : 8);
  const work: Promise<void>[] = [];
  for (let start = 0; start < bodies.length; start += 10) {
    const slice = bodies.slice(start, start + 10);
    work.push(
      limit(async () => {
        const response = await client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: slice.map((body, offset) => ({
              Id: String(offset),
              MessageBody: body,
              ...(options.groupId
                ? {
                    MessageGroupId: options.groupId(start + offset),
                    MessageDeduplicationId: `d-${start + offset}-${body.length}`,
                  }
                : {}),
            })),
          }),
        );
        if (response.Failed?.length) throw new Error(`send failed: ${JSON.stringify(response.Failed)}`);
      }),
    );
  }
  await Promise.all(work);
}

/** ApproximateNumberOfMessages (local-aws-sqs counts in-flight ones too) plus NotVisible. */
export async function queueDepth(
  client: SQSClient,
  queueUrl: string,
): Promise<{ visible: number; inFlight: number }> {
  const response = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(response.Attributes?.['ApproximateNumberOfMessages'] ?? 0),
    inFlight: Number(response.Attributes?.['ApproximateNumberOfMessagesNotVisible'] ?? 0),
  };
}

/** Receives everything visible now (short polls until one comes back empty). */
export async function receiveAll(
  client: SQSClient,
  queueUrl: string,
  visibilityTimeout = 60,
): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const response = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: visibilityTimeout,
        AttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = response.Messages ?? [];
    if (messages.length === 0) return all;
    all.push(...messages);
  }
}

export async function listKeys(s3: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    keys.push(...(page.Contents ?? []).map((o) => o.Key as string));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

/** A throw-away database on the MongoDB peer; `drop()` removes it. */
export async function testDatabase(
  uri: string,
): Promise<{ client: MongoClient; name: string; uri: string; drop(): Promise<void> }> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  const name = uniqueName('awsmsg').replace(/-/g, '_');
  return {
    client,
    name,
    uri,
    async drop() {
      await client
        .db(name)
        .dropDatabase()
        .catch(() => undefined);
      await client.close();
    },
  };
}

/** True when the MongoDB peer is FerretDB (it rejects some documents MongoDB accepts). */
export async function isFerretDb(client: MongoClient): Promise<boolean> {
  const info = await client.db('admin').command({ buildInfo: 1 });
  return typeof info['ferretdbVersion'] === 'string' || typeof info['ferretdb'] === 'object';
}

/** The environment a test run of process-sqs (in-process or child) is configured with. */
export function processEnv(options: {
  sqsEndpoint: string;
  s3Endpoint?: string;
  queueUrl: string;
  mongoUri?: string;
  database?: string;
  extra?: Record<string, string>;
}): Record<string, string> {
  const env: Record<string, string> = {
    AWS_REGION: TEST_REGION,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_SQS: options.sqsEndpoint,
    SQS_QUEUE_URL: options.queueUrl,
    ...options.extra,
  };
  if (options.s3Endpoint) env['AWS_ENDPOINT_URL_S3'] = options.s3Endpoint;
  if (options.mongoUri) env['MONGODB_URI'] = options.mongoUri;
  if (options.database) env['MONGODB_DATABASE'] = options.database;
  return env;
}

/** Settings exactly as the CLI would load them from this environment. */
export function processSettings(env: Record<string, string>): ProcessSqsSettings {
  return loadProcessSqsSettings({ flags: {}, env, dotenv: {} }, REPO_ROOT);
}

/** Message attributes of a producer's own, which a dead-lettered copy must keep. */
export const PRODUCER_ATTRIBUTES: Record<string, MessageAttributeValue> = {
  tenant: { DataType: 'String', StringValue: 'acme' },
  priority: { DataType: 'Number', StringValue: '7' },
};

/** Sends one message carrying {@link PRODUCER_ATTRIBUTES}. */
export function sendWithProducerAttributes(
  client: SQSClient,
  queueUrl: string,
  body: string,
): Promise<SendMessageCommandOutput> {
  return client.send(
    new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, MessageAttributes: PRODUCER_ATTRIBUTES }),
  );
}

/**
 * Asserts every attribute aws-msg adds to a dead-lettered message: the reason (matching `reason`),
 * the source queue, the original message id, its receive count (a Number) and when it failed
 * (within `from`..`to`).
 */
export function expectDeadLetterAttributes(
  message: Message,
  expected: { sourceQueue: string; receiveCount: string; from: number; to: number; reason?: RegExp },
): void {
  const attributes = message.MessageAttributes ?? {};
  expect(attributes).toMatchObject({
    [DLQ_ATTRIBUTES.reason]: {
      DataType: 'String',
      StringValue: expect.stringMatching(expected.reason ?? /\S/),
    },
    [DLQ_ATTRIBUTES.sourceQueue]: { DataType: 'String', StringValue: expected.sourceQueue },
    [DLQ_ATTRIBUTES.messageId]: { DataType: 'String', StringValue: expect.stringMatching(/\S/) },
    [DLQ_ATTRIBUTES.receiveCount]: { DataType: 'Number', StringValue: expected.receiveCount },
    [DLQ_ATTRIBUTES.failedAt]: {
      DataType: 'String',
      StringValue: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    },
  });
  const failedAt = Date.parse(attributes[DLQ_ATTRIBUTES.failedAt]?.StringValue ?? '');
  expect(failedAt).toBeGreaterThanOrEqual(expected.from);
  expect(failedAt).toBeLessThanOrEqual(expected.to);
}
