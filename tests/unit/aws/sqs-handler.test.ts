import type { SQSClient } from '@aws-sdk/client-sqs';
import { SqsQueue, toQueueMessage } from '../../../src/aws/sqs-handler.js';
import { queueMessage } from '../../helpers/factories.js';

/**
 * The SDK client is a boundary we don't own: this fake answers batch calls with scripted
 * Successful/Failed lists so that the retry rules can be checked exactly. The same code runs
 * against real emulators in tests/integration/sqs-handler.test.ts.
 */
function scriptedClient(answers: Array<(entries: Array<{ Id: string }>) => unknown>) {
  const calls: Array<{ name: string; ids: string[] }> = [];
  const client = {
    async send(command: { constructor: { name: string }; input: { Entries?: Array<{ Id: string }> } }) {
      const entries = command.input.Entries ?? [];
      calls.push({ name: command.constructor.name, ids: entries.map((e) => e.Id) });
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
    expect(calls).toEqual([
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
