/**
 * The built CLI as cron runs it: signals, crashes, several consumers at once, and exit codes.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import { createQueue, testSqsClient } from '../helpers/aws.js';
import { spawnCli } from '../helpers/cli.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';
import {
  orderEvent,
  processEnv,
  queueDepth,
  receiveAll,
  sendBodies,
  testDatabase,
} from '../helpers/sqs-fixtures.js';

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * After a consumer died or exited at once: its long polls may still be open on the server, which
 * hands them messages nobody will read (hidden for one visibility timeout: delayed, not lost).
 * Those polls end about 1 s after the process (later when the emulator lags under load), so wait
 * until nothing has been hidden for 3 s in a row: longer than both a poll and the 2 s visibility
 * timeout the tests use, so a late capture is always seen and restarts the wait.
 */
async function heldMessagesVisibleAgain(sqs: SQSClient, queueUrl: string): Promise<void> {
  const quietFor = 3000;
  const deadline = Date.now() + 30_000;
  let quietSince = Date.now();
  for (;;) {
    if ((await queueDepth(sqs, queueUrl)).inFlight > 0) quietSince = Date.now();
    else if (Date.now() - quietSince >= quietFor) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for the stopped process's messages");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function events(n: number): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify(orderEvent(i)));
}

describeWithPeers(['sqs', 'mongo'], 'aws-msg process-sqs (child process)', () => {
  let sqs: SQSClient;
  let db: Awaited<ReturnType<typeof testDatabase>>;

  beforeAll(async () => {
    sqs = testSqsClient(requirePeer('sqs'));
    db = await testDatabase(requirePeer('mongo'));
  });
  afterAll(async () => {
    sqs.destroy();
    await db.drop();
  });

  function env(queueUrl: string, collection: string, extra: Record<string, string> = {}) {
    return processEnv({
      sqsEndpoint: requirePeer('sqs'),
      queueUrl,
      mongoUri: db.uri,
      database: db.name,
      extra: { MONGODB_COLLECTION: collection, MESSAGE_ID_FIELD: 'eventId', LOG_FORMAT: 'json', ...extra },
    });
  }

  it('SIGTERM mid-run: in-flight work finishes, unstarted messages are visible again at once, nothing is lost', async () => {
    // Prepare: store batches of 40 that otherwise wait 9 s, so that when the signal comes some
    // messages are stored and the rest of what was received sits unstarted.
    const queue = await createQueue(sqs);
    const total = 400;
    await sendBodies(sqs, queue.url, events(total));
    const collection = db.client.db(db.name).collection('sigterm');
    const cli = spawnCli(
      [
        'process-sqs',
        '--json',
        '--receivers',
        '2',
        '--max-in-flight',
        '120',
        '--store-batch-size',
        '40',
        '--store-batch-wait',
        '9s',
      ],
      { env: env(queue.url, 'sigterm') },
    );
    await cli.waitForStderr(/run_started/);
    await until(async () => (await collection.countDocuments()) >= 40, 20_000, 'the first store batch');

    // Act
    cli.kill('SIGTERM');
    const result = await cli.done;

    // Assess
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as Record<string, number | string>;
    expect(summary['stopReason']).toBe('signal');
    expect(summary['released']).toBeGreaterThan(0);
    const stored = await collection.countDocuments();
    expect(summary['stored']).toBe(stored);
    // Everything not stored can be received right now, although the visibility timeout is 60 s.
    const back = await receiveAll(sqs, queue.url);
    expect(back).toHaveLength(total - stored);
    const storedKeys = new Set(await collection.distinct('key'));
    for (const message of back)
      expect(storedKeys.has(JSON.parse(message.Body as string).eventId)).toBe(false);
  }, 60_000);

  it('a second SIGTERM exits at once with 130, and a rerun still stores every message once', async () => {
    // Prepare
    const queue = await createQueue(sqs);
    const total = 300;
    await sendBodies(sqs, queue.url, events(total));
    const collection = db.client.db(db.name).collection('twice');
    const settings = env(queue.url, 'twice', {
      SQS_VISIBILITY_TIMEOUT: '2s',
      SQS_WAIT_TIME_SECONDS: '1',
      STORE_BATCH_SIZE: '20',
    });
    const cli = spawnCli(['process-sqs', '--store-batch-wait', '5s', '--store-batch-size', '50'], {
      env: settings,
    });
    await until(async () => (await collection.countDocuments()) >= 50, 20_000, 'the first store batch');

    // Act
    cli.kill('SIGTERM');
    await cli.waitForStderr(/SIGTERM received/);
    cli.kill('SIGTERM');
    const result = await cli.done;
    await heldMessagesVisibleAgain(sqs, queue.url);
    const rerun = await spawnCli(['process-sqs', '--until-empty'], { env: settings }).done;

    // Assess
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('second SIGTERM, exiting now');
    expect(rerun.code).toBe(0);
    expect(await collection.countDocuments()).toBe(total);
    expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
  }, 60_000);

  it('kill -9 mid-run, then a rerun: exactly one document per message', async () => {
    // Prepare
    const queue = await createQueue(sqs);
    const total = 500;
    await sendBodies(sqs, queue.url, events(total));
    const collection = db.client.db(db.name).collection('killed');
    const settings = env(queue.url, 'killed', {
      SQS_VISIBILITY_TIMEOUT: '2s',
      SQS_WAIT_TIME_SECONDS: '1',
      STORE_BATCH_SIZE: '20',
    });
    const first = spawnCli(['process-sqs'], { env: settings });
    await until(async () => (await collection.countDocuments()) >= 100, 20_000, '100 stored documents');

    // Act
    first.kill('SIGKILL');
    expect((await first.done).code).not.toBe(0);
    await heldMessagesVisibleAgain(sqs, queue.url);
    const rerun = await spawnCli(['process-sqs', '--until-empty'], { env: settings }).done;

    // Assess
    expect(rerun.code).toBe(0);
    expect(await collection.countDocuments()).toBe(total);
    expect((await collection.distinct('key')).length).toBe(total);
    expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
  }, 60_000);

  it('three processes draining one queue at once store each message exactly once', async () => {
    // Prepare
    const queue = await createQueue(sqs);
    const total = 3000;
    await sendBodies(sqs, queue.url, events(total));
    const collection = db.client.db(db.name).collection('three');

    // Act
    const runs = await Promise.all(
      [1, 2, 3].map(
        () => spawnCli(['process-sqs', '--until-empty', '--json'], { env: env(queue.url, 'three') }).done,
      ),
    );

    // Assess
    for (const run of runs) expect(run.code).toBe(0);
    const summaries = runs.map((run) => JSON.parse(run.stdout) as { stored: number; received: number });
    expect(summaries.reduce((sum, s) => sum + s.stored, 0)).toBe(total);
    expect(summaries.reduce((sum, s) => sum + s.received, 0)).toBe(total);
    expect(summaries.filter((s) => s.stored > 0).length).toBeGreaterThan(1);
    expect(await collection.countDocuments()).toBe(total);
    expect(await collection.countDocuments({ receiveCount: { $gt: 1 } })).toBe(0);
    expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
  }, 120_000);

  it('exit code 1 when some messages were rejected, with the summary on stdout', async () => {
    const queue = await createQueue(sqs);
    await sendBodies(sqs, queue.url, [JSON.stringify(orderEvent(1)), 'not json']);
    const result = await spawnCli(['process-sqs', '--until-empty', '--json', '--poison-backoff', '10m'], {
      env: env(queue.url, 'exit1'),
    }).done;
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ received: 2, stored: 1, rejected: 1, deadLettered: 0 });
  }, 30_000);

  it('exit code 3 when the queue or the store is unreachable at start, without leaking the password', async () => {
    const queue = await createQueue(sqs);
    const noQueue = await spawnCli(['process-sqs', '--until-empty'], {
      env: env('http://127.0.0.1:9/000000000000/missing', 'x', { AWS_MAX_ATTEMPTS: '1' }),
    }).done;
    expect(noQueue.code).toBe(3);
    expect(noQueue.stderr).toMatch(
      /^aws-msg: SQS GetQueueAttributes on http:\/\/127\.0\.0\.1:9\/000000000000\/missing failed/m,
    );

    const noStore = await spawnCli(['process-sqs', '--until-empty'], {
      env: {
        ...env(queue.url, 'x'),
        MONGODB_URI: 'mongodb://app:hunter2-secret@127.0.0.1:9/db?serverSelectionTimeoutMS=300',
      },
    }).done;
    expect(noStore.code).toBe(3);
    expect(noStore.stderr).toMatch(/^aws-msg: MongoDB 127\.0\.0\.1:9\/\w+\.x: connect ECONNREFUSED/m);
    expect(noStore.stderr).not.toContain('hunter2');
  }, 30_000);

  it('exit code 2 with one line per configuration problem', async () => {
    const result = await spawnCli(['process-sqs', '--queue-url', 'nope', '--batch-size', '11'], { env: {} })
      .done;
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      'aws-msg: --queue-url: got "nope", expected an absolute http or https URL',
      'aws-msg: --batch-size: got "11", expected an integer from 1 to 10',
      expect.stringMatching(
        /^aws-msg: no store configured: set --mongo-uri \(MONGODB_URI\), .*--archive-bucket/,
      ),
    ]);
  });
});
