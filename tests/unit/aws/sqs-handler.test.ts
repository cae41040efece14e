import type { SQSClient } from '@aws-sdk/client-sqs';
import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import { DLQ_ATTRIBUTES, SqsQueue, toQueueMessage } from '../../../src/aws/sqs-handler.js';
import { createLogger } from '../../../src/utils/logger.js';
import { queueMessage } from '../../helpers/factories.js';
import { CaptureStream } from '../../helpers/streams.js';

interface SentEntry {
  Id: string;
  MessageBody?: string;
  MessageAttributes?: Record<string, MessageAttributeValue>;
}

/**
 * The SDK client is a boundary we don't own: this fake answers batch calls with scripted
 * Successful/Failed lists so that the retry rules can be checked exactly. The same code runs
 * against real emulators in tests/integration/process-sqs.test.ts and tests/integration/lambda.test.ts.
 */
function scriptedClient(answers: Array<(entries: Array<{ Id: string }>) => unknown>) {
  const calls: Array<{ name: string; ids: string[]; queueUrl?: string; entries: SentEntry[] }> = [];
  const client = {
    async send(command: {
      constructor: { name: string };
      input: { QueueUrl?: string; Entries?: SentEntry[] };
    }) {
      const entries = command.input.Entries ?? [];
      calls.push({
        name: command.constructor.name,
        ids: entries.map((e) => e.Id),
        ...(command.input.QueueUrl !== undefined ? { queueUrl: command.input.QueueUrl } : {}),
        entries,
      });
      const answer = answers.shift();
      if (!answer) throw new Error('unexpected call');
      const result = answer(entries);
      if (result instanceof Error) throw result;
      return result;
    },
  };
  return { client: client as unknown as SQSClient, calls };
}

describe('SqsQueue batch acknowledgements', () => {
  it('retries entries SQS reports as failed, but not sender faults', async () => {
    const { client, calls } = scriptedClient([
      (entries) => ({
        Successful: entries.filter((e) => e.Id === '0').map((e) => ({ Id: e.Id })),
        Failed: [
          { Id: '1', Code: 'InternalError', SenderFault: false, Message: 'try again' },
          { Id: '2', Code: 'ReceiptHandleIsInvalid', SenderFault: true, Message: 'stale' },
        ],
      }),
      (entries) => ({ Successful: entries.map((e) => ({ Id: e.Id })) }),
    ]);
    const queue = new SqsQueue({ sqs: client, queueUrl: 'http://q', flushDelayMs: 1 });
    const messages = [queueMessage({ a: 1 }), queueMessage({ a: 2 }), queueMessage({ a: 3 })];

    const results = await Promise.all(messages.map((m) => queue.delete(m)));

    expect(results).toEqual([
      { ok: true },
      { ok: true },
      { ok: false, error: 'ReceiptHandleIsInvalid: stale' },
    ]);
    expect(calls.map(({ name, ids }) => ({ name, ids }))).toEqual([
      { name: 'DeleteMessageBatchCommand', ids: ['0', '1', '2'] },
      { name: 'DeleteMessageBatchCommand', ids: ['1'] },
    ]);
  });

  it('gives up on an entry after the configured attempts', async () => {
    const failing = (entries: Array<{ Id: string }>) => ({
      Failed: entries.map((e) => ({ Id: e.Id, Code: 'ServiceUnavailable', SenderFault: false })),
    });
    const { client, calls } = scriptedClient([failing, failing]);
    const queue = new SqsQueue({ sqs: client, queueUrl: 'http://q', flushDelayMs: 1, entryAttempts: 2 });
    const result = await queue.changeVisibility(queueMessage({}), 0);
    expect(result).toEqual({ ok: false, error: 'ServiceUnavailable:' });
    expect(calls).toHaveLength(2);
  });

  it('a thrown call fails every entry with a message naming the operation and queue', async () => {
    const { client } = scriptedClient([
      () => Object.assign(new Error('socket hang up'), { name: 'NetworkingError' }),
    ]);
    const queue = new SqsQueue({ sqs: client, queueUrl: 'http://q', flushDelayMs: 1 });
    const result = await queue.delete(queueMessage({}));
    expect(result).toEqual({
      ok: false,
      error: 'SQS DeleteMessageBatch on http://q failed: NetworkingError: socket hang up',
    });
  });

  it('sends ten entries per request', async () => {
    const ok = (entries: Array<{ Id: string }>) => ({ Successful: entries.map((e) => ({ Id: e.Id })) });
    const { client, calls } = scriptedClient([ok, ok, ok]);
    const queue = new SqsQueue({ sqs: client, queueUrl: 'http://q', flushDelayMs: 1 });
    await Promise.all(Array.from({ length: 25 }, () => queue.delete(queueMessage({}))));
    expect(calls.map((c) => c.ids.length)).toEqual([10, 10, 5]);
  });
});

describe('SqsQueue dead letters', () => {
  const ok = (entries: Array<{ Id: string }>) => ({ Successful: entries.map((e) => ({ Id: e.Id })) });

  it("sends the body with every aws-msg attribute, and as many of the producer's attributes as fit in SQS's 10", async () => {
    // Prepare: one message with 7 producer attributes (only 5 fit beside our 5), one with 2.
    const { client, calls } = scriptedClient([ok]);
    const log = new CaptureStream();
    const queue = new SqsQueue({
      sqs: client,
      queueUrl: 'http://q',
      dlqUrl: 'http://dlq',
      flushDelayMs: 1,
      logger: createLogger({ format: 'json', stream: log }),
    });
    const crowded = queueMessage(
      { a: 1 },
      {
        messageId: 'crowded',
        receiveCount: 3,
        messageAttributes: Object.fromEntries(
          Array.from({ length: 7 }, (_, i) => [`attr-${i}`, { dataType: 'String', value: `v${i}` }]),
        ),
      },
    );
    const roomy = queueMessage(
      { b: 2 },
      {
        messageId: 'roomy',
        messageAttributes: {
          trace: { dataType: 'String', value: 'abc' },
          blob: { dataType: 'Binary', value: 'AQID' },
        },
      },
    );
    const before = Date.now();

    // Act
    const results = await Promise.all([
      queue.deadLetter(crowded, 'schema: /amount: must be number'),
      queue.deadLetter(roomy, 'x'.repeat(2000)),
    ]);

    // Assess
    expect(results).toEqual([{ ok: true }, { ok: true }]);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.queueUrl).toBe('http://dlq');
    const [first, second] = calls[0]?.entries ?? [];
    const string = (value: unknown) => ({ DataType: 'String', StringValue: value });
    expect(first?.MessageBody).toBe('{"a":1}');
    expect(first?.MessageAttributes).toEqual({
      'attr-0': string('v0'),
      'attr-1': string('v1'),
      'attr-2': string('v2'),
      'attr-3': string('v3'),
      'attr-4': string('v4'),
      [DLQ_ATTRIBUTES.reason]: string('schema: /amount: must be number'),
      [DLQ_ATTRIBUTES.sourceQueue]: string('http://q'),
      [DLQ_ATTRIBUTES.messageId]: string('crowded'),
      [DLQ_ATTRIBUTES.receiveCount]: { DataType: 'Number', StringValue: '3' },
      [DLQ_ATTRIBUTES.failedAt]: string(expect.stringMatching(/^\d{4}-\d\d-\d\dT/)),
    });
    const failedAt = Date.parse(first?.MessageAttributes?.[DLQ_ATTRIBUTES.failedAt]?.StringValue ?? '');
    expect(failedAt).toBeGreaterThanOrEqual(before - 1);
    expect(failedAt).toBeLessThanOrEqual(Date.now());
    expect(second?.MessageAttributes).toEqual({
      trace: string('abc'),
      blob: { DataType: 'Binary', BinaryValue: Buffer.from([1, 2, 3]) },
      [DLQ_ATTRIBUTES.reason]: string('x'.repeat(1024)),
      [DLQ_ATTRIBUTES.sourceQueue]: string('http://q'),
      [DLQ_ATTRIBUTES.messageId]: string('roomy'),
      [DLQ_ATTRIBUTES.receiveCount]: { DataType: 'Number', StringValue: '1' },
      [DLQ_ATTRIBUTES.failedAt]: string(expect.any(String)),
    });
    const dropped = log
      .lines()
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry['event'] === 'dlq_attributes_dropped');
    expect(dropped).toEqual([expect.objectContaining({ messageId: 'crowded', kept: 5 })]);
  });
});

describe('toQueueMessage', () => {
  it('keeps attributes and turns binary message attributes into base64', () => {
    const at = new Date();
    const message = toQueueMessage(
      {
        MessageId: 'm',
        ReceiptHandle: 'r',
        Body: '{}',
        Attributes: { ApproximateReceiveCount: '2', MessageGroupId: 'g' },
        MessageAttributes: {
          trace: { DataType: 'String', StringValue: 'abc' },
          blob: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 3]) },
        },
      },
      at,
    );
    expect(message).toEqual({
      messageId: 'm',
      receiptHandle: 'r',
      body: '{}',
      attributes: { ApproximateReceiveCount: '2', MessageGroupId: 'g' },
      messageAttributes: {
        trace: { dataType: 'String', value: 'abc' },
        blob: { dataType: 'Binary', value: 'AQID' },
      },
      receivedAt: at,
    });
  });
});
