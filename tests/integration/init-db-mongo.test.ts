import { MongoClient } from 'mongodb';
import type { InitDbSummary } from '../../src/services/init-db.js';
import { uniqueName } from '../helpers/aws.js';
import { runCli } from '../helpers/cli.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';

describeWithPeers(['mongo'], 'aws-msg init-db against a MongoDB-wire server', () => {
  const database = uniqueName('awsmsg_initdb').replace(/-/g, '_');
  let client: MongoClient;
  let env: Record<string, string>;

  beforeAll(async () => {
    const uri = requirePeer('mongo');
    env = { MONGODB_URI: uri, MONGODB_DATABASE: database, MONGODB_COLLECTION: 'events' };
    client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
    await client.connect();
  });

  afterAll(async () => {
    await client.db(database).dropDatabase();
    await client.close();
  });

  it('creates the indexes process-sqs relies on, and a second run creates nothing and changes nothing', async () => {
    // Act
    const first = await runCli(['init-db', '--json'], { env });
    const second = await runCli(['init-db', '--json'], { env });

    // Assess
    expect([first.code, second.code]).toEqual([0, 0]);
    const firstSummary = JSON.parse(first.stdout) as InitDbSummary;
    const secondSummary = JSON.parse(second.stdout) as InitDbSummary;
    expect(firstSummary.stores).toEqual(['mongodb']);
    expect(firstSummary.mongo?.indexesCreated).toEqual(['key_unique', 'sentAt']);
    expect(secondSummary.mongo?.indexesCreated).toEqual([]);

    const indexes = await client.db(database).collection('events').listIndexes().toArray();
    expect(indexes.map((index) => index['name']).sort()).toEqual(['_id_', 'key_unique', 'sentAt']);
    const unique = indexes.find((index) => index['name'] === 'key_unique');
    expect(unique?.['key']).toEqual({ key: 1 });
    expect(unique?.['unique']).toBe(true);
  });

  it('leaves the unique index doing its job: a second document with the same key is refused', async () => {
    // Prepare
    await runCli(['init-db'], { env });
    const events = client.db(database).collection('events');
    await events.insertOne({ key: 'k-1', n: 1 });

    // Act
    const duplicate = await events.insertOne({ key: 'k-1', n: 2 }).catch((error: unknown) => error);

    // Assess
    expect((duplicate as { code?: number }).code).toBe(11000);
    expect(await events.countDocuments({ key: 'k-1' })).toBe(1);
  });
});
