import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { SQSClient } from '@aws-sdk/client-sqs';
import {
  createHandler,
  queueUrlFromArn,
  recordToQueueMessage,
  type LambdaHandlerDeps,
  type SecretsClient,
} from '../../../src/aws/lambda-entrypoint.js';
import {
  LAMBDA_SECRET_OPTIONS,
  loadLambdaSettings,
  type LambdaSettings,
} from '../../../src/config/lambda-settings.js';
import type { ItemResult, MessageRecord, Sink } from '../../../src/database/sink.js';
import { backoffSeconds } from '../../../src/services/acknowledgement.js';
import { AppError, ConfigError } from '../../../src/utils/errors.js';
import { createLogger, redactString } from '../../../src/utils/logger.js';
import { REPO_ROOT } from '../../helpers/cli.js';
import { deferred, MemorySink } from '../../helpers/factories.js';
import { FakeMssqlServer } from '../../helpers/fake-mssql.js';
import {
  FakeAckQueue,
  fakeContext,
  FIFO_QUEUE_ARN,
  QUEUE_ARN,
  sqsEvent,
  sqsRecord,
} from '../../helpers/lambda-events.js';
import { CaptureStream } from '../../helpers/streams.js';

const ORDER_SCHEMA = join(REPO_ROOT, 'schemas', 'order-event.schema.json');
const DLQ_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders-dlq';
const FIFO_DLQ_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders-dlq.fifo';
const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders';
const RANDOM = () => 0.5;

interface Harness {
  handler: ReturnType<typeof createHandler>;
  queues: Map<string, FakeAckQueue>;
  log: CaptureStream;
  calls: { clients: number; sinks: number; queues: number };
  events(name: string): Array<Record<string, unknown>>;
}

/** A handler over in-memory stores and queue; the environment carries the settings under test. */
function harness(
  sinks: () => Sink[],
  env: Record<string, string> = {},
  options: { deadLetterFails?: boolean; deps?: Partial<LambdaHandlerDeps> } = {},
): Harness {
  const log = new CaptureStream();
  const queues = new Map<string, FakeAckQueue>();
  const calls = { clients: 0, sinks: 0, queues: 0 };
  const handler = createHandler({
    env: { MONGODB_URI: 'mongodb://db.example.com:27017/shop', AWS_REGION: 'eu-west-1', ...env },
    logger: createLogger({ format: 'json', level: 'debug', stream: log }),
    random: RANDOM,
    createClients: () => {
      calls.clients++;
      return { sqs: {} as SQSClient };
    },
    createSinks: () => {
      calls.sinks++;
      return sinks();
    },
    createQueue: (url) => {
      calls.queues++;
      const queue = new FakeAckQueue(url);
      queue.deadLetterFails = options.deadLetterFails ?? false;
      queues.set(url, queue);
      return queue;
    },
    ...options.deps,
  });
  return {
    handler,
    queues,
    log,
    calls,
    events: (name) =>
      log
        .lines()
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((entry) => entry['event'] === name),
  };
}

function failures(response: { batchItemFailures: Array<{ itemIdentifier: string }> }): string[] {
  return response.batchItemFailures.map((f) => f.itemIdentifier).sort();
}

/** A sink that fails the records whose body `n` is in `transient` (retryable) or `permanent`. */
function failingSink(transient: number[] = [], permanent: number[] = []): MemorySink {
  return new MemorySink('memory', (record) => {
    const n = (record.body as { n?: number }).n ?? -1;
    if (transient.includes(n)) return { error: 'store timed out', retryable: true };
    if (permanent.includes(n)) return { error: 'document refused', retryable: false };
    return undefined;
  });
}

describe('queueUrlFromArn', () => {
  it.each([
    [QUEUE_ARN, undefined, QUEUE_URL],
    [FIFO_QUEUE_ARN, undefined, `${QUEUE_URL}.fifo`],
    [
      'arn:aws-cn:sqs:cn-north-1:123456789012:q',
      undefined,
      'https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q',
    ],
    [QUEUE_ARN, 'http://127.0.0.1:9324/', 'http://127.0.0.1:9324/123456789012/orders'],
    ['arn:aws:sns:eu-west-1:123456789012:topic', undefined, undefined],
    ['not an arn', undefined, undefined],
  ])('%s (endpoint %s) -> %s', (arn, endpoint, expected) => {
    expect(queueUrlFromArn(arn, endpoint)).toBe(expected);
  });
});

describe('recordToQueueMessage', () => {
  it('keeps ids, body, system attributes and string and binary message attributes', () => {
    // Prepare
    const record = sqsRecord('{"a":1}', {
      messageId: 'm-1',
      groupId: 'g-1',
      receiveCount: 3,
      messageAttributes: {
        tenant: { dataType: 'String', stringValue: 'acme' },
        blob: { dataType: 'Binary', binaryValue: Buffer.from([1, 2, 3]).toString('base64') },
      },
    });
    const receivedAt = new Date('2026-12-03T10:00:05Z');

    // Act
    const message = recordToQueueMessage(record, receivedAt);

    // Assess
    expect(message).toEqual({
      messageId: 'm-1',
      receiptHandle: record.receiptHandle,
      body: '{"a":1}',
      attributes: expect.objectContaining({
        ApproximateReceiveCount: '3',
        MessageGroupId: 'g-1',
        SentTimestamp: record.attributes.SentTimestamp,
      }),
      messageAttributes: {
        tenant: { dataType: 'String', value: 'acme' },
        blob: { dataType: 'Binary', value: 'AQID' },
      },
      receivedAt,
    });
  });
});

describe('Lambda handler', () => {
  it('stores every valid record and reports no failures', async () => {
    // Prepare
    const sink = new MemorySink();
    const h = harness(() => [sink], { SQS_DLQ_URL: DLQ_URL });
    const records = [1, 2, 3].map((n) => sqsRecord({ n }, { messageId: `m-${n}` }));

    // Act
    const response = await h.handler(sqsEvent(records), fakeContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect([...sink.records.keys()].sort()).toEqual(['m-1', 'm-2', 'm-3']);
    expect(h.queues.get(QUEUE_URL)?.visibility).toEqual([]);
    expect(h.events('lambda_batch_done')[0]).toMatchObject({ received: 3, stored: 3, batchItemFailures: 0 });
  });

  it('reports only the transient failure, hidden for the same backoff process-sqs uses', async () => {
    // Prepare
    const sink = failingSink([2]);
    const h = harness(() => [sink], { SQS_DLQ_URL: DLQ_URL, SQS_RETRY_BACKOFF: '10s' });
    const records = [1, 2, 3].map((n) => sqsRecord({ n }, { messageId: `m-${n}`, receiveCount: n }));

    // Act
    const response = await h.handler(sqsEvent(records), fakeContext());

    // Assess
    expect(failures(response)).toEqual(['m-2']);
    expect([...sink.records.keys()].sort()).toEqual(['m-1', 'm-3']);
    expect(h.queues.get(QUEUE_URL)?.visibility).toEqual([
      { messageId: 'm-2', seconds: backoffSeconds(2, 10_000, 15 * 60_000, RANDOM) },
    ]);
    expect(h.queues.get(QUEUE_URL)?.deadLettered).toEqual([]);
  });

  it('sends poison messages to the DLQ with the reason and counts them as handled', async () => {
    // Prepare
    const sink = new MemorySink();
    const h = harness(() => [sink], {
      SQS_DLQ_URL: DLQ_URL,
      MESSAGE_SCHEMA: ORDER_SCHEMA,
      MESSAGE_ID_FIELD: 'eventId',
    });
    const good = {
      eventId: 'evt-000001',
      type: 'order.paid',
      orderId: 'ORD-1',
      customerId: 'CUST-1',
      amount: 10,
      currency: 'EUR',
      occurredAt: '2026-12-03T10:00:00Z',
    };
    const records = [
      sqsRecord(good, { messageId: 'good' }),
      sqsRecord('{"eventId": ', { messageId: 'broken-json' }),
      sqsRecord({ ...good, eventId: 'evt-000002', amount: 'lots' }, { messageId: 'bad-schema' }),
    ];

    // Act
    const response = await h.handler(sqsEvent(records), fakeContext());

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect([...sink.records.keys()]).toEqual(['evt-000001']);
    const dlq = h.queues.get(QUEUE_URL)?.deadLettered ?? [];
    expect(dlq.map((d) => d.messageId).sort()).toEqual(['bad-schema', 'broken-json']);
    expect(dlq.find((d) => d.messageId === 'broken-json')?.reason).toMatch(/^invalid JSON/);
    expect(dlq.find((d) => d.messageId === 'bad-schema')?.reason).toMatch(/^schema: \/amount/);
  });

  it('reports a poison message as failed when the DLQ send fails, and hides it for the poison backoff', async () => {
    // Prepare
    const h = harness(
      () => [new MemorySink()],
      { SQS_DLQ_URL: DLQ_URL, SQS_POISON_BACKOFF: '30m' },
      { deadLetterFails: true },
    );
    const records = [
      sqsRecord('not json', { messageId: 'poison' }),
      sqsRecord({ n: 1 }, { messageId: 'fine' }),
    ];

    // Act
    const response = await h.handler(sqsEvent(records), fakeContext());

    // Assess
    expect(failures(response)).toEqual(['poison']);
    expect(h.queues.get(QUEUE_URL)?.visibility).toEqual([{ messageId: 'poison', seconds: 1800 }]);
    expect(h.events('dead_letter_failed')).toHaveLength(1);
  });

  it('without a DLQ reports poison messages as failed, hidden for the poison backoff until the redrive policy moves them', async () => {
    // Prepare
    const sink = failingSink([], [3]);
    const h = harness(() => [sink], { SQS_POISON_BACKOFF: '1h' });
    const records = [
      sqsRecord('{', { messageId: 'bad' }),
      sqsRecord({ n: 2 }, { messageId: 'ok' }),
      sqsRecord({ n: 3 }, { messageId: 'refused' }),
    ];

    // Act
    const response = await h.handler(sqsEvent(records), fakeContext());

    // Assess
    expect(failures(response)).toEqual(['bad', 'refused']);
    expect(h.queues.get(QUEUE_URL)?.deadLettered).toEqual([]);
    expect(
      h.queues.get(QUEUE_URL)?.visibility.sort((a, b) => a.messageId.localeCompare(b.messageId)),
    ).toEqual([
      { messageId: 'bad', seconds: 3600 },
      { messageId: 'refused', seconds: 3600 },
    ]);
    expect([...sink.records.keys()]).toEqual(['ok']);
  });

  it('leaves visibility alone when LAMBDA_VISIBILITY_BACKOFF=false', async () => {
    // Prepare
    const h = harness(() => [failingSink([1])], { LAMBDA_VISIBILITY_BACKOFF: 'false' });

    // Act
    const response = await h.handler(sqsEvent([sqsRecord({ n: 1 }, { messageId: 'm-1' })]), fakeContext());

    // Assess
    expect(failures(response)).toEqual(['m-1']);
    expect(h.queues.get(QUEUE_URL)?.visibility).toEqual([]);
  });

  it('FIFO: the first failure of a group fails the rest of that group, unprocessed; other groups go on', async () => {
    // Prepare
    const sink = failingSink([2]);
    const h = harness(() => [sink], { SQS_DLQ_URL: FIFO_DLQ_URL, STORE_BATCH_SIZE: '2' });
    const records = [
      sqsRecord({ n: 1 }, { messageId: 'a1', groupId: 'a' }),
      sqsRecord({ n: 10 }, { messageId: 'b1', groupId: 'b' }),
      sqsRecord({ n: 2 }, { messageId: 'a2', groupId: 'a' }),
      sqsRecord({ n: 11 }, { messageId: 'b2', groupId: 'b' }),
      sqsRecord({ n: 3 }, { messageId: 'a3', groupId: 'a' }),
      sqsRecord({ n: 4 }, { messageId: 'a4', groupId: 'a' }),
      sqsRecord({ n: 12 }, { messageId: 'b3', groupId: 'b' }),
    ];

    // Act
    const response = await h.handler(sqsEvent(records), fakeContext());

    // Assess
    expect(failures(response)).toEqual(['a2', 'a3', 'a4']);
    expect([...sink.records.keys()].sort()).toEqual(['a1', 'b1', 'b2', 'b3']);
    // a3 and a4 (a later chunk) never reached the store.
    expect(sink.batches.flat()).not.toEqual(expect.arrayContaining(['a3']));
    expect(sink.batches.flat()).not.toEqual(expect.arrayContaining(['a4']));
    const visibility = h.queues.get(`${QUEUE_URL}.fifo`)?.visibility ?? [];
    expect(
      visibility
        .filter((v) => v.seconds === 0)
        .map((v) => v.messageId)
        .sort(),
    ).toEqual(['a3', 'a4']);
  });

  it('stops starting store batches when the remaining time falls under the margin and reports the rest', async () => {
    // Prepare: every store batch "takes" 3 s of the invocation's 10 s; the margin is 5 s.
    const context = fakeContext({ remainingMs: 10_000 });
    const sink = new MemorySink();
    const slowSink: Sink = {
      name: 'slow',
      open: () => sink.open(),
      close: () => sink.close(),
      async write(batch: readonly MessageRecord[]): Promise<ItemResult[]> {
        context.remainingMs -= 3000;
        return sink.write(batch);
      },
    };
    const h = harness(() => [slowSink], { STORE_BATCH_SIZE: '2', LAMBDA_TIMEOUT_MARGIN: '5s' });
    const records = Array.from({ length: 8 }, (_, i) => sqsRecord({ n: i }, { messageId: `m-${i}` }));

    // Act
    const response = await h.handler(sqsEvent(records), context);

    // Assess: chunks started at 10 s and 7 s left; at 4 s left nothing more started.
    expect([...sink.records.keys()].sort()).toEqual(['m-0', 'm-1', 'm-2', 'm-3']);
    expect(failures(response)).toEqual(['m-4', 'm-5', 'm-6', 'm-7']);
    // Unstarted messages are given back at once, not after the visibility timeout.
    expect(h.queues.get(QUEUE_URL)?.visibility.map((v) => v.seconds)).toEqual([0, 0, 0, 0]);
    expect(h.events('lambda_batch_done')[0]).toMatchObject({ stored: 4, released: 4 });
  });

  it('gives up a store batch that is still running at the margin and answers before the timeout', async () => {
    // Prepare: a store that never answers; a warm environment with 400 ms to live and a 300 ms
    // margin, so the store batch gets 100 ms.
    const writes: string[][] = [];
    const hung: Sink = {
      name: 'hung',
      open: async () => undefined,
      close: async () => undefined,
      write: (batch) => {
        writes.push(batch.map((r) => r.messageId));
        return new Promise<ItemResult[]>(() => undefined);
      },
    };
    const h = harness(() => [hung], { LAMBDA_TIMEOUT_MARGIN: '300ms' });
    await h.handler(sqsEvent([]), fakeContext());
    const records = [sqsRecord({ n: 1 }, { messageId: 'm-1' }), sqsRecord({ n: 2 }, { messageId: 'm-2' })];

    // Act
    const response = await h.handler(sqsEvent(records), fakeContext({ remainingMs: 400 }));

    // Assess: the batch was started, given up, and its messages come back after the backoff.
    expect(writes).toEqual([['m-1', 'm-2']]);
    expect(failures(response)).toEqual(['m-1', 'm-2']);
    expect(h.events('lambda_out_of_time')).toEqual([
      expect.objectContaining({ level: 'warn', messages: 2, budgetMs: 100 }),
    ]);
    expect(h.events('lambda_batch_done')[1]).toMatchObject({ received: 2, failed: 2, batchItemFailures: 2 });
    const backoff = backoffSeconds(1, 10_000, 15 * 60_000, RANDOM);
    expect(h.queues.get(QUEUE_URL)?.visibility).toEqual([
      { messageId: 'm-1', seconds: backoff },
      { messageId: 'm-2', seconds: backoff },
    ]);
  }, 5_000);

  it('reports every record as failed when the stores are not ready within the time left, and uses them once they are', async () => {
    // Prepare: opening the store (a first connection) takes until the test says; the invocation
    // has 100 ms more than the 5 s default margin.
    const opened = deferred();
    let opens = 0;
    const sink = new MemorySink();
    const slowToOpen: Sink = {
      name: 'slow-to-open',
      open: async () => {
        opens++;
        await opened.promise;
      },
      close: () => sink.close(),
      write: (batch) => sink.write(batch),
    };
    const h = harness(() => [slowToOpen]);
    const records = [sqsRecord({ n: 1 }, { messageId: 'm-1' }), sqsRecord({ n: 2 }, { messageId: 'm-2' })];

    // Act
    const first = await h.handler(sqsEvent(records), fakeContext({ remainingMs: 5_100 }));
    opened.resolve();
    const second = await h.handler(sqsEvent(records), fakeContext());

    // Assess
    expect(failures(first)).toEqual(['m-1', 'm-2']);
    expect(h.events('lambda_start_out_of_time')).toEqual([
      expect.objectContaining({
        level: 'error',
        budgetMs: 100,
        timeoutMarginMs: 5000,
        reason: expect.stringMatching(/not ready .* every record is reported as failed/),
      }),
    ]);
    expect(second).toEqual({ batchItemFailures: [] });
    expect([...sink.records.keys()].sort()).toEqual(['m-1', 'm-2']);
    // The second invocation took over the opening the first had started.
    expect(opens).toBe(1);
    expect(h.events('lambda_timeout_margin_too_large')).toEqual([]);
  }, 5_000);

  it('warns once when LAMBDA_TIMEOUT_MARGIN leaves no time at the first invocation', async () => {
    // Prepare
    const h = harness(() => [new MemorySink()], { LAMBDA_TIMEOUT_MARGIN: '10s' });
    const event = sqsEvent([sqsRecord({ n: 1 }, { messageId: 'm-1' })]);

    // Act
    const first = await h.handler(event, fakeContext({ remainingMs: 8_000 }));
    await h.handler(event, fakeContext({ remainingMs: 8_000 }));

    // Assess
    expect(failures(first)).toEqual(['m-1']);
    expect(h.events('lambda_timeout_margin_too_large')).toEqual([
      expect.objectContaining({ level: 'warn', timeoutMarginMs: 10_000, remainingMs: 8_000 }),
    ]);
  });

  it('masks secrets in the reason it sends to the DLQ', async () => {
    // Prepare: a store that refuses the document with an error quoting its connection string.
    const refusing = new MemorySink('mongodb', () => ({
      error: 'refused by mongodb://app:hunter22-pw@db.example.com:27017/shop',
      retryable: false,
    }));
    const h = harness(() => [refusing], { SQS_DLQ_URL: DLQ_URL });

    // Act
    const response = await h.handler(sqsEvent([sqsRecord({ n: 1 }, { messageId: 'm-1' })]), fakeContext());

    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const [dead] = h.queues.get(QUEUE_URL)?.deadLettered ?? [];
    expect(dead?.reason).toContain('mongodb://app:***@db.example.com:27017/shop');
    expect(dead?.reason).not.toContain('hunter22-pw');
  });

  it('builds clients, sinks and queue edges once and reuses them across invocations', async () => {
    // Prepare
    let opens = 0;
    const sink = new MemorySink();
    const counting: Sink = {
      name: 'counting',
      open: async () => {
        opens++;
      },
      close: () => sink.close(),
      write: (batch) => sink.write(batch),
    };
    const h = harness(() => [counting]);

    // Act
    for (let i = 0; i < 3; i++) {
      await h.handler(sqsEvent([sqsRecord({ n: i }, { messageId: `m-${i}` })]), fakeContext());
    }

    // Assess
    expect(h.calls).toEqual({ clients: 1, sinks: 1, queues: 1 });
    expect(opens).toBe(1);
    expect(sink.records.size).toBe(3);
  });

  it('writes to the configured stores over the one SQL Server pool of the environment, kept open until close()', async () => {
    // Prepare: the real sinks (createSinks) over an in-memory SQL Server pool.
    const server = new FakeMssqlServer();
    const h = harness(
      () => [],
      { MONGODB_URI: '', MSSQL_URL: 'mssql://app:secret-pw@db.example.com:1433/shop' },
      {
        deps: {
          createSinks: undefined,
          createClients: () => ({ sqs: { destroy: () => undefined } as unknown as SQSClient, mssql: server }),
        },
      },
    );

    // Act
    const first = await h.handler(sqsEvent([sqsRecord({ n: 1 }, { messageId: 'm-1' })]), fakeContext());
    const second = await h.handler(sqsEvent([sqsRecord({ n: 2 }, { messageId: 'm-2' })]), fakeContext());
    const closedBetween = server.closed;
    await h.handler.close();

    // Assess
    expect([first, second]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect([...server.table.keys()].sort()).toEqual(['m-1', 'm-2']);
    expect(server.merges).toHaveLength(2);
    expect(closedBetween).toBe(0);
    expect(server.closed).toBe(1);
  });

  it('fails an invocation whose stores cannot be opened, and retries the opening over the same clients', async () => {
    // Prepare
    let available = false;
    const sink = new MemorySink();
    const flaky: Sink = {
      name: 'flaky',
      open: async () => {
        if (!available)
          throw new AppError('DEPENDENCY_UNAVAILABLE', 'MongoDB db.example.com: connect ECONNREFUSED');
      },
      close: async () => undefined,
      write: (batch) => sink.write(batch),
    };
    const h = harness(() => [flaky]);
    const event = sqsEvent([sqsRecord({ n: 1 }, { messageId: 'm-1' })]);

    // Act
    const first = h.handler(event, fakeContext());
    await expect(first).rejects.toThrow(/ECONNREFUSED/);
    available = true;
    const second = await h.handler(event, fakeContext());

    // Assess
    expect(second.batchItemFailures).toEqual([]);
    expect(h.calls.clients).toBe(1);
    expect(h.calls.sinks).toBe(2);
    expect(h.events('lambda_start_failed')).toHaveLength(1);
  });

  it('fails on a bad configuration with one log line per problem, every time, without building clients', async () => {
    // Prepare
    const h = harness(() => [new MemorySink()], {
      MONGODB_URI: '',
      SQS_DLQ_URL: 'not a url',
      LAMBDA_TIMEOUT_MARGIN: 'soon',
      SQS_RETRY_BACKOFF: '10m',
      SQS_RETRY_BACKOFF_MAX: '1m',
    });
    const event = sqsEvent([sqsRecord({ n: 1 })]);

    // Act
    const first = await h.handler(event, fakeContext()).catch((error: unknown) => error);
    const second = await h.handler(event, fakeContext()).catch((error: unknown) => error);

    // Assess
    expect(first).toBeInstanceOf(ConfigError);
    expect(second).toBe(first);
    // Four problems, logged again by the second invocation.
    const problems = h.events('lambda_config_invalid').map((e) => e['problem']);
    expect(problems).toHaveLength(8);
    expect(problems.slice(0, 4)).toEqual([
      expect.stringMatching(/^SQS_DLQ_URL: got "not a url", expected an absolute http or https URL/),
      expect.stringMatching(/^LAMBDA_TIMEOUT_MARGIN: got "soon", expected a duration/),
      expect.stringMatching(/^no store configured/),
      expect.stringMatching(/^SQS_RETRY_BACKOFF_MAX: got 60000ms, expected at least SQS_RETRY_BACKOFF/),
    ]);
    expect(h.calls.clients).toBe(0);
  });

  it('refuses a standard DLQ for a FIFO queue', async () => {
    // Prepare
    const h = harness(() => [new MemorySink()], { SQS_DLQ_URL: DLQ_URL });

    // Act
    const result = h.handler(sqsEvent([sqsRecord({ n: 1 }, { groupId: 'g' })]), fakeContext());

    // Assess
    await expect(result).rejects.toThrow(/SQS_DLQ_URL: the FIFO queue .* needs a FIFO DLQ/);
  });

  it('answers an empty event with no failures', async () => {
    // Prepare
    const h = harness(() => [new MemorySink()]);

    // Act
    const response = await h.handler(sqsEvent([]), fakeContext());

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
  });
});

const MONGO_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:aws-msg/mongodb-uri-AbCdEf';
const MSSQL_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:aws-msg/mssql-url-GhIjKl';

describe('Lambda secret settings', () => {
  const base = { AWS_REGION: 'eu-west-1' };

  it('takes the secret ARNs instead of the values, leaving those stores to be resolved once read', () => {
    // Act
    const settings = loadLambdaSettings({
      ...base,
      MONGODB_URI_SECRET_ARN: MONGO_SECRET_ARN,
      MSSQL_URL_SECRET_ARN: MSSQL_SECRET_ARN,
      MSSQL_POOL_MAX: '2',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:5000',
    });

    // Assess
    expect(settings.secretArns).toEqual({ mongoUri: MONGO_SECRET_ARN, mssqlUrl: MSSQL_SECRET_ARN });
    expect(settings.mongo).toBeUndefined();
    expect(settings.mssql).toBeUndefined();
    expect(settings.secretsEndpoint).toBe('http://127.0.0.1:5000');
    expect(loadLambdaSettings({ ...base, MONGODB_URI: 'mongodb://h/db' }).secretArns).toBeUndefined();
  });

  it('reports a bad ARN, a value set as well, and the other store settings, one line each', () => {
    // Act
    let error: unknown;
    try {
      loadLambdaSettings({
        ...base,
        MONGODB_URI: 'mongodb://h/db',
        MONGODB_URI_SECRET_ARN: MONGO_SECRET_ARN,
        MSSQL_URL_SECRET_ARN: 'aws-msg/mssql-url',
        MSSQL_PORT: 'many',
      });
    } catch (caught) {
      error = caught;
    }

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(
        /^MSSQL_URL_SECRET_ARN: got "aws-msg\/mssql-url", expected a Secrets Manager secret ARN/,
      ),
      'MONGODB_URI_SECRET_ARN: set it or MONGODB_URI, not both',
      expect.stringMatching(/^MSSQL_PORT: got "many"/),
    ]);
  });

  it('are documented in the README', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    for (const name of Object.values(LAMBDA_SECRET_OPTIONS).flatMap((s) => s.env ?? [])) {
      expect(readme).toContain(`\`${name}\``);
    }
  });
});

/** A Secrets Manager client at its SDK boundary: `send(GetSecretValueCommand)`. */
class FakeSecretsClient implements SecretsClient {
  readonly requested: string[] = [];
  destroyed = 0;
  constructor(
    readonly values: Record<string, string>,
    public failWith?: Error,
  ) {}

  async send(command: GetSecretValueCommand): Promise<{ SecretString?: string }> {
    expect(command).toBeInstanceOf(GetSecretValueCommand);
    const id = command.input.SecretId ?? '';
    this.requested.push(id);
    if (this.failWith) throw this.failWith;
    return { SecretString: this.values[id] };
  }

  destroy(): void {
    this.destroyed++;
  }
}

describe('Lambda handler with secrets', () => {
  const PASSWORD = 'Secr3t-pw-from-sm';
  const MONGO_URI = `mongodb://app:${PASSWORD}@db.example.com:27017/shop`;
  const MSSQL_URL = `mssql://sa:${PASSWORD}x@sql.example.com:1433/orders`;

  function secretHarness(client: FakeSecretsClient, env: Record<string, string>) {
    const seen: LambdaSettings[] = [];
    const clientSettings: LambdaSettings[] = [];
    const h = harness(
      () => [new MemorySink()],
      { MONGODB_URI: '', ...env },
      {
        deps: {
          createSecretsClient: (settings) => {
            clientSettings.push(settings);
            return client;
          },
          createSinks: (settings) => {
            seen.push(settings);
            return [new MemorySink()];
          },
        },
      },
    );
    return { h, seen, clientSettings };
  }

  it('reads each secret once, on the first invocation, and stores with the values, masked in logs', async () => {
    // Prepare
    const client = new FakeSecretsClient({ [MONGO_SECRET_ARN]: MONGO_URI, [MSSQL_SECRET_ARN]: MSSQL_URL });
    const { h, seen, clientSettings } = secretHarness(client, {
      MONGODB_URI_SECRET_ARN: MONGO_SECRET_ARN,
      MSSQL_URL_SECRET_ARN: MSSQL_SECRET_ARN,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:5000',
    });
    const event = sqsEvent([sqsRecord({ n: 1 }, { messageId: 'm-1' })]);

    // Act
    const first = await h.handler(event, fakeContext());
    const second = await h.handler(event, fakeContext());

    // Assess
    expect(first.batchItemFailures).toEqual([]);
    expect(second.batchItemFailures).toEqual([]);
    expect(client.requested.sort()).toEqual([MONGO_SECRET_ARN, MSSQL_SECRET_ARN].sort());
    expect(client.destroyed).toBe(1);
    expect(clientSettings[0]?.secretsEndpoint).toBe('http://127.0.0.1:5000');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.secretArns).toBeUndefined();
    expect(seen[0]?.mongo).toEqual({ uri: MONGO_URI, database: 'shop', collection: 'messages' });
    expect(seen[0]?.mssql?.connection).toMatchObject({
      server: 'sql.example.com',
      database: 'orders',
      user: 'sa',
      password: `${PASSWORD}x`,
    });
    expect(redactString(`connect ${MONGO_URI} failed`)).not.toContain(PASSWORD);
    expect(redactString(`login failed for ${PASSWORD}x`)).not.toContain(PASSWORD);
    expect(h.log.text()).not.toContain(PASSWORD);
  });

  it('fails an invocation whose secret cannot be read with one line naming the variable and ARN, and reads it again next time', async () => {
    // Prepare
    const denied = Object.assign(
      new Error('User is not authorized to perform secretsmanager:GetSecretValue'),
      {
        name: 'AccessDeniedException',
      },
    );
    const client = new FakeSecretsClient({ [MONGO_SECRET_ARN]: MONGO_URI }, denied);
    const { h, seen } = secretHarness(client, { MONGODB_URI_SECRET_ARN: MONGO_SECRET_ARN });
    const event = sqsEvent([sqsRecord({ n: 1 }, { messageId: 'm-1' })]);

    // Act
    const first = await h.handler(event, fakeContext()).catch((error: unknown) => error);
    delete client.failWith;
    const second = await h.handler(event, fakeContext());

    // Assess
    expect(first).toBeInstanceOf(AppError);
    expect((first as AppError).message).toBe(
      `MONGODB_URI_SECRET_ARN: could not read secret ${MONGO_SECRET_ARN}: User is not authorized to perform secretsmanager:GetSecretValue`,
    );
    // The logger masks whatever follows `secretsmanager:` in text, ARNs included: the thrown error
    // (Lambda's errorMessage) carries the ARN, the log line the variable.
    expect(h.events('lambda_start_failed').map((e) => e['error'])).toEqual([
      expect.stringMatching(/^MONGODB_URI_SECRET_ARN: could not read secret arn:aws:/),
    ]);
    expect(second.batchItemFailures).toEqual([]);
    expect(client.requested).toEqual([MONGO_SECRET_ARN, MONGO_SECRET_ARN]);
    expect(client.destroyed).toBe(2);
    expect(seen).toHaveLength(1);
  });

  it('reports an empty or invalid secret value without quoting it, and reads it again next time', async () => {
    // Prepare
    const values: Record<string, string> = { [MONGO_SECRET_ARN]: '' };
    const client = new FakeSecretsClient(values);
    const { h } = secretHarness(client, { MONGODB_URI_SECRET_ARN: MONGO_SECRET_ARN });
    const event = sqsEvent([sqsRecord({ n: 1 }, { messageId: 'm-1' })]);

    // Act
    const empty = await h.handler(event, fakeContext()).catch((error: unknown) => error);
    values[MONGO_SECRET_ARN] = `http://app:${PASSWORD}@nowhere`;
    const invalid = await h.handler(event, fakeContext()).catch((error: unknown) => error);
    values[MONGO_SECRET_ARN] = MONGO_URI;
    const fixed = await h.handler(event, fakeContext());

    // Assess
    expect((empty as Error).message).toBe(
      `MONGODB_URI_SECRET_ARN: secret ${MONGO_SECRET_ARN} has no SecretString`,
    );
    expect((invalid as Error).message).toMatch(
      /^MONGODB_URI \(the secret in MONGODB_URI_SECRET_ARN\): got an invalid value, expected/,
    );
    expect((invalid as Error).message).not.toContain(PASSWORD);
    expect(fixed.batchItemFailures).toEqual([]);
    expect(h.log.text()).not.toContain(PASSWORD);
  });
});
