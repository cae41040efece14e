/**
 * How fast the MongoDB peer itself writes, without SQS: the ceiling any SQS->MongoDB tool on this
 * machine can reach. Writes documents shaped like aws-msg's (about 1.4 KiB each) with the ways the
 * tools under test write: insertOne one at a time, insertMany in batches of 10 and 100 (one and
 * four batches in flight), and upserts by _id (bulkWrite updateOne/upsert) in batches of 100
 * (a tenth of the documents: FerretDB v1 upserts are very slow).
 * Every mode gets its own collection. Prints one JSON line.
 *
 *   node ferret-micro.js MONGO_URI DB DOCS_PER_MODE
 */
import { MongoClient, type AnyBulkWriteOperation } from 'mongodb';

const [uri, database, docsArg] = process.argv.slice(2);
if (!uri || !database || !docsArg) throw new Error('usage: ferret-micro MONGO_URI DB DOCS_PER_MODE');
const docsPerMode = Number(docsArg);

interface Doc {
  _id: string;
  [key: string]: unknown;
}

function document(mode: string, i: number): Doc {
  const now = new Date();
  return {
    _id: `${mode}-${i}`,
    key: `${mode}-${i}`,
    messageId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    body: {
      eventId: `evt-${i}`,
      type: 'order.created',
      orderId: `ORD-${i}`,
      amount: i % 1000,
      items: Array.from({ length: 5 }, (_, k) => ({ sku: `SKU-${k}`, qty: k + 1, price: 9.99 })),
      note: 'x'.repeat(600),
    },
    attributes: { SentTimestamp: String(now.getTime()), ApproximateReceiveCount: '1' },
    messageAttributes: [],
    sentAt: now,
    receivedAt: now,
    storedAt: now,
    receiveCount: 1,
  };
}

const client = new MongoClient(uri);
await client.connect();
const db = client.db(database);

async function measure(
  name: string,
  batch: number,
  concurrency: number,
  docs: number,
  write: (items: Doc[], collection: ReturnType<typeof db.collection<Doc>>) => Promise<unknown>,
): Promise<{ mode: string; docs: number; ms: number; docsPerSecond: number }> {
  const collection = db.collection<Doc>(name);
  await collection.createIndex({ key: 1 }, { unique: true, name: 'key_unique' });
  const batches: Doc[][] = [];
  for (let start = 0; start < docs; start += batch) {
    batches.push(Array.from({ length: Math.min(batch, docs - start) }, (_, k) => document(name, start + k)));
  }
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const items = batches[next++] as Doc[];
        await write(items, collection);
      }
    }),
  );
  const ms = performance.now() - started;
  const count = await collection.countDocuments();
  if (count !== docs) throw new Error(`${name}: expected ${docs} documents, found ${count}`);
  return { mode: name, docs, ms: Math.round(ms), docsPerSecond: Math.round((docs * 1000) / ms) };
}

const upsert = (items: Doc[]): AnyBulkWriteOperation<Doc>[] =>
  items.map(({ _id, ...fields }) => ({
    updateOne: { filter: { _id }, update: { $set: fields }, upsert: true },
  }));

const results = [
  await measure('insertOne-x1', 1, 1, docsPerMode, (items, c) => c.insertOne(items[0] as Doc)),
  await measure('insertMany10-x1', 10, 1, docsPerMode, (items, c) => c.insertMany(items, { ordered: false })),
  await measure('insertMany100-x1', 100, 1, docsPerMode, (items, c) =>
    c.insertMany(items, { ordered: false }),
  ),
  await measure('insertMany100-x4', 100, 4, docsPerMode, (items, c) =>
    c.insertMany(items, { ordered: false }),
  ),
  // FerretDB v1 upserts row by row, at tens of documents a second: a tenth of the documents.
  await measure('upsert100-x1', 100, 1, Math.max(100, Math.round(docsPerMode / 10)), (items, c) =>
    c.bulkWrite(upsert(items), { ordered: false }),
  ),
];
await db.dropDatabase();
await client.close();
process.stdout.write(`${JSON.stringify(results)}\n`);
