import { MongoClient, MongoServerError } from 'mongodb';
import { uniqueName } from '../../helpers/aws.js';
import { describeWithPeers, requirePeer } from '../../helpers/peers.js';

describeWithPeers(['mongo'], 'MongoDB wire round trip', () => {
  let client: MongoClient;
  const dbName = uniqueName('awsmsg_test').replace(/-/g, '_');

  beforeAll(async () => {
    client = new MongoClient(requirePeer('mongo'), { serverSelectionTimeoutMS: 5000 });
    await client.connect();
  });
  afterAll(async () => {
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  it('inserts, finds, and rejects a duplicate on a unique index', async () => {
    // Prepare
    const collection = client.db(dbName).collection<{ key: string; n: number }>('smoke');
    await collection.createIndex({ key: 1 }, { unique: true });

    // Act
    await collection.insertOne({ key: 'a', n: 1 });
    const found = await collection.findOne({ key: 'a' });
    const duplicate = await collection.insertOne({ key: 'a', n: 2 }).catch((error: unknown) => error);

    // Assess
    expect(found?.n).toBe(1);
    expect(duplicate).toBeInstanceOf(MongoServerError);
    expect((duplicate as MongoServerError).code).toBe(11000);
    expect(await collection.countDocuments({ key: 'a' })).toBe(1);
  });
});
