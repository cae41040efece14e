/**
 * The floor: what the queue service itself allows. `loops` tight loops of ReceiveMessage(10)
 * followed by one DeleteMessageBatch for what came back, no processing, until `n` messages were
 * deleted. It asks for the same attributes aws-msg asks for, so the emulator does the same work
 * per receive. Prints one JSON line with its own request counts.
 *
 * With MONGO_URI and DB it is the floor *with a store*: each loop also writes what it received
 * with one insertMany (JSON.parse of the body, nothing else) before deleting it. That is the least
 * any SQS->MongoDB consumer must do, so it shows what the MongoDB peer leaves of the floor.
 *
 *   node sqs-floor.js ENDPOINT QUEUE_URL N [LOOPS] [MONGO_URI DB]
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { MongoClient } from 'mongodb';

const [endpoint, queueUrl, nArg, loopsArg, mongoUri, database] = process.argv.slice(2);
if (!endpoint || !queueUrl || !nArg)
  throw new Error('usage: sqs-floor ENDPOINT QUEUE_URL N [LOOPS] [MONGO_URI DB]');
const n = Number(nArg);
const loops = Number(loopsArg ?? 8);
const mongo = mongoUri ? new MongoClient(mongoUri) : undefined;
await mongo?.connect();
const collection = mongo?.db(database ?? 'bench').collection<{ _id: string }>('messages');

const client = new SQSClient({
  region: 'us-east-1',
  endpoint,
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
});
const requests: Record<string, number> = {};
client.middlewareStack.add(
  (next, context) => async (args) => {
    const name = (context.commandName ?? 'Unknown').replace(/Command$/, '');
    requests[name] = (requests[name] ?? 0) + 1;
    return next(args);
  },
  { step: 'deserialize', name: 'benchRequestCounter' },
);

let deleted = 0;
let received = 0;
const started = Date.now();

async function loop(): Promise<void> {
  let empties = 0;
  while (deleted < n && empties < 3) {
    const response = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        AttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = response.Messages ?? [];
    if (messages.length === 0) {
      empties++;
      continue;
    }
    empties = 0;
    received += messages.length;
    if (collection) {
      await collection.insertMany(
        messages.map((m) => ({ _id: m.MessageId ?? '', body: JSON.parse(m.Body ?? 'null') as unknown })),
        { ordered: false },
      );
    }
    const result = await client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
    deleted += result.Successful?.length ?? 0;
    if (result.Failed?.length) throw new Error(`delete failed: ${JSON.stringify(result.Failed)}`);
  }
}

await Promise.all(Array.from({ length: loops }, () => loop()));
client.destroy();
await mongo?.close();
const durationMs = Date.now() - started;
process.stdout.write(
  `${JSON.stringify({ received, deleted, durationMs, messagesPerSecond: (deleted * 1000) / durationMs, requests })}\n`,
);
