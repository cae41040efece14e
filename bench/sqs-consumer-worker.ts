/**
 * sqs-consumer (latest, from bench/node_modules), used the way its README shows, storing into
 * MongoDB. Two modes:
 *   message  `handleMessage` with one `insertOne` per message, default options (batchSize 1)
 *   batch    `handleMessageBatch` with one `insertMany` per receive, `batchSize: 10`
 * The SQS client is passed in (the README's `sqs` option) with a request-counting middleware.
 * It stops once `n` messages were processed (acknowledged) and prints one JSON line.
 *
 *   node sqs-consumer-worker.js MODE ENDPOINT QUEUE_URL MONGO_URI DB N
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MongoClient as MongoClientType } from 'mongodb';
import { BENCH_DIR } from './common.js';

interface SqsMessage {
  MessageId?: string;
  ReceiptHandle?: string;
  Body?: string;
}

interface ConsumerLike {
  on(event: string, listener: (...args: unknown[]) => void): void;
  start(): void;
  stop(options?: { abort?: boolean }): void;
}

interface ConsumerModule {
  Consumer: {
    create(options: Record<string, unknown>): ConsumerLike;
  };
}

interface SqsClientLike {
  middlewareStack: {
    add(
      middleware: (
        next: (args: unknown) => Promise<unknown>,
        context: { commandName?: string },
      ) => (args: unknown) => Promise<unknown>,
      options: { step: 'deserialize'; name: string },
    ): void;
  };
  destroy(): void;
}

interface SqsModule {
  SQSClient: new (config: Record<string, unknown>) => SqsClientLike;
}

const [mode, endpoint, queueUrl, mongoUri, database, nArg] = process.argv.slice(2);
if ((mode !== 'message' && mode !== 'batch') || !endpoint || !queueUrl || !mongoUri || !database || !nArg) {
  throw new Error('usage: sqs-consumer-worker message|batch ENDPOINT QUEUE_URL MONGO_URI DB N');
}
const n = Number(nArg);

// Resolve from bench/ so sqs-consumer and the client we hand it come from the same copy of
// @aws-sdk/client-sqs; mongodb resolves up to the product's own driver (same version as aws-msg).
const benchRequire = createRequire(join(BENCH_DIR, 'package.json'));
const load = async <T>(specifier: string): Promise<T> =>
  (await import(pathToFileURL(benchRequire.resolve(specifier)).href)) as T;
const { Consumer } = await load<ConsumerModule>('sqs-consumer');
const { SQSClient } = await load<SqsModule>('@aws-sdk/client-sqs');
const { MongoClient } = await load<{ MongoClient: typeof MongoClientType }>('mongodb');

const requests: Record<string, number> = {};
const sqs = new SQSClient({
  region: 'us-east-1',
  endpoint,
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
});
sqs.middlewareStack.add(
  (next, context) => async (args) => {
    const name = (context.commandName ?? 'Unknown').replace(/Command$/, '');
    requests[name] = (requests[name] ?? 0) + 1;
    return next(args);
  },
  { step: 'deserialize', name: 'benchRequestCounter' },
);

const mongo = new MongoClient(mongoUri);
await mongo.connect();
const collection = mongo.db(database).collection<{ _id: string }>('messages');

const toDocument = (message: SqsMessage) => ({
  _id: message.MessageId ?? '',
  body: JSON.parse(message.Body ?? 'null') as unknown,
  receivedAt: new Date(),
});

let processed = 0;
let errors = 0;
let firstReceivedAt: number | null = null;
let lastProcessedAt = 0;
const started = Date.now();

const consumer = Consumer.create({
  queueUrl,
  sqs,
  ...(mode === 'message'
    ? {
        handleMessage: async (message: SqsMessage) => {
          await collection.insertOne(toDocument(message));
          return message;
        },
      }
    : {
        batchSize: 10,
        handleMessageBatch: async (messages: SqsMessage[]) => {
          await collection.insertMany(messages.map(toDocument), { ordered: false });
          return messages;
        },
      }),
});

const done = new Promise<void>((resolve) => {
  consumer.on('message_received', () => {
    firstReceivedAt ??= Date.now();
  });
  consumer.on('message_processed', () => {
    processed++;
    lastProcessedAt = Date.now();
    if (processed >= n) resolve();
  });
  consumer.on('error', (error) => {
    errors++;
    console.error(`error: ${(error as Error).message}`);
  });
  consumer.on('processing_error', (error) => {
    errors++;
    console.error(`processing_error: ${(error as Error).message}`);
  });
});

consumer.start();
await done;
consumer.stop({ abort: true });
await mongo.close();
sqs.destroy();
const durationMs = lastProcessedAt - started;
process.stdout.write(
  `${JSON.stringify({
    mode,
    processed,
    errors,
    durationMs,
    activeMs: firstReceivedAt === null ? null : lastProcessedAt - firstReceivedAt,
    messagesPerSecond: (processed * 1000) / durationMs,
    requests,
  })}\n`,
);
process.exit(0);
