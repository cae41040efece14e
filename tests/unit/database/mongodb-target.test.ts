import type { MongoClient } from 'mongodb';
import { MongoSink, describeMongoTarget } from '../../../src/database/mongodb-connector.js';
import { AppError } from '../../../src/utils/errors.js';

describe('where the MongoDB sink writes, without credentials', () => {
  it.each([
    ['mongodb://app:s3cret@db.example.com:27017/shop', 'MongoDB db.example.com:27017/shop.messages'],
    [
      'mongodb://app:s3cret@h1:27017,h2:27017,h3:27017/shop?replicaSet=rs0',
      'MongoDB h1:27017,h2:27017,h3:27017/shop.messages',
    ],
    ['mongodb+srv://app:s3cret@cluster0.example.net/shop', 'MongoDB cluster0.example.net/shop.messages'],
    ['not a connection string', 'MongoDB MongoDB/shop.messages'],
  ])('%s', (uri, expected) => {
    expect(describeMongoTarget(uri, 'shop', 'messages')).toBe(expected);
  });
});

describe('open() failures', () => {
  it('an unreachable server is DEPENDENCY_UNAVAILABLE, naming the host but not the password', async () => {
    // Prepare
    const sink = new MongoSink({
      uri: 'mongodb://u:secret@127.0.0.1:1/db',
      database: 'db',
      collection: 'messages',
      serverSelectionTimeoutMs: 300,
    });

    // Act
    const error = await sink.open().catch((e: unknown) => e);
    await sink.close();

    // Assess
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', retryable: true });
    expect((error as Error).message).toMatch(/^MongoDB 127\.0\.0\.1:1\/db\.messages: /);
    expect((error as Error).message).not.toContain('secret');
  });

  it('masks a password that the driver quotes in its error', async () => {
    // Prepare: a driver error that repeats the connection string
    const client = {
      connect: () => Promise.reject(new Error('cannot reach mongodb://u:secret@127.0.0.1:1/db')),
      close: () => Promise.resolve(),
    } as unknown as MongoClient;
    const sink = new MongoSink({
      uri: 'mongodb://u:secret@127.0.0.1:1/db',
      database: 'db',
      collection: 'c',
      client,
    });

    // Act
    const error = await sink.open().catch((e: unknown) => e);

    // Assess
    expect((error as Error).message).toBe(
      'MongoDB 127.0.0.1:1/db.c: cannot reach mongodb://u:***@127.0.0.1:1/db',
    );
  });
});
