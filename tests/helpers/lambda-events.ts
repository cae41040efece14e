/**
 * Lambda SQS events as the Lambda service builds them, a fake invocation context with a
 * controllable clock, and an in-memory acknowledgement queue (DLQ sends, visibility changes).
 */
import { createHash, randomUUID } from 'node:crypto';
import { DeleteMessageBatchCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import type { AckQueue } from '../../src/aws/lambda-entrypoint.js';
import type { QueueMessage } from '../../src/services/message-processor.js';

export const QUEUE_ARN = 'arn:aws:sqs:eu-west-1:123456789012:orders';
export const FIFO_QUEUE_ARN = 'arn:aws:sqs:eu-west-1:123456789012:orders.fifo';

let sequence = 0;

export interface SqsRecordOptions {
  messageId?: string;
  /** FIFO MessageGroupId; the record then comes from FIFO_QUEUE_ARN unless `queueArn` says otherwise. */
  groupId?: string;
  /** ApproximateReceiveCount. Default 1. */
  receiveCount?: number;
  sentAt?: Date;
  queueArn?: string;
  messageAttributes?: SQSMessageAttributes;
}

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

/** One record of a Lambda SQS event. Objects are serialised; strings are sent raw. */
export function sqsRecord(body: unknown, options: SqsRecordOptions = {}): SQSRecord {
  sequence++;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const sentAt = options.sentAt ?? new Date('2026-12-03T10:00:00Z');
  const queueArn = options.queueArn ?? (options.groupId !== undefined ? FIFO_QUEUE_ARN : QUEUE_ARN);
  const record: SQSRecord = {
    messageId: options.messageId ?? randomUUID(),
    receiptHandle: `AQEB${sequence}${randomUUID().replace(/-/g, '')}`,
    body: text,
    attributes: {
      ApproximateReceiveCount: String(options.receiveCount ?? 1),
      SentTimestamp: String(sentAt.getTime()),
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: String(sentAt.getTime() + 100),
    },
    messageAttributes: options.messageAttributes ?? {},
    md5OfBody: md5(text),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: queueArn.split(':')[3] ?? 'us-east-1',
  };
  if (options.groupId !== undefined) {
    record.attributes.MessageGroupId = options.groupId;
    record.attributes.SequenceNumber = String(sequence).padStart(20, '0');
    record.attributes.MessageDeduplicationId = md5(text);
  }
  return record;
}

export function sqsEvent(records: SQSRecord[]): SQSEvent {
  return { Records: records };
}

/**
 * Turns messages received with the SDK into the records Lambda would hand the function: the same
 * fields, camel-cased, with binary attribute values base64-encoded.
 */
export function sqsEventFromMessages(messages: readonly Message[], queueArn: string): SQSEvent {
  return {
    Records: messages.map((message): SQSRecord => {
      const messageAttributes: SQSMessageAttributes = {};
      for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
        messageAttributes[name] = {
          dataType: value.DataType ?? 'String',
          ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
          ...(value.BinaryValue !== undefined
            ? { binaryValue: Buffer.from(value.BinaryValue).toString('base64') }
            : {}),
          stringListValues: [],
          binaryListValues: [],
        };
      }
      const attributes = (message.Attributes ?? {}) as Record<string, string>;
      const record: SQSRecord = {
        messageId: message.MessageId ?? '',
        receiptHandle: message.ReceiptHandle ?? '',
        body: message.Body ?? '',
        attributes: {
          ApproximateReceiveCount: attributes['ApproximateReceiveCount'] ?? '1',
          SentTimestamp: attributes['SentTimestamp'] ?? String(Date.now()),
          SenderId: attributes['SenderId'] ?? 'AIDAEXAMPLE',
          ApproximateFirstReceiveTimestamp:
            attributes['ApproximateFirstReceiveTimestamp'] ?? String(Date.now()),
          ...(attributes['MessageGroupId'] !== undefined
            ? { MessageGroupId: attributes['MessageGroupId'] }
            : {}),
          ...(attributes['SequenceNumber'] !== undefined
            ? { SequenceNumber: attributes['SequenceNumber'] }
            : {}),
          ...(attributes['MessageDeduplicationId'] !== undefined
            ? { MessageDeduplicationId: attributes['MessageDeduplicationId'] }
            : {}),
        },
        messageAttributes,
        md5OfBody: message.MD5OfBody ?? md5(message.Body ?? ''),
        eventSource: 'aws:sqs',
        eventSourceARN: queueArn,
        awsRegion: queueArn.split(':')[3] ?? 'us-east-1',
      };
      if (message.MD5OfMessageAttributes !== undefined)
        record.md5OfMessageAttributes = message.MD5OfMessageAttributes;
      return record;
    }),
  };
}

/** An invocation context whose remaining time the test controls. */
export interface FakeContext extends Context {
  /** Milliseconds left; tests may change it while the handler runs. */
  remainingMs: number;
}

/** A fixed remaining time (`remainingMs`), or a real clock counting down from `timeoutMs`. */
export function fakeContext(options: { remainingMs?: number; timeoutMs?: number } = {}): FakeContext {
  const startedAt = Date.now();
  const context: FakeContext = {
    remainingMs: options.remainingMs ?? 60_000,
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'aws-msg-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:aws-msg-test',
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/aws-msg-test',
    logStreamName: '2026/12/03/[$LATEST]test',
    getRemainingTimeInMillis() {
      if (options.timeoutMs !== undefined) return Math.max(0, startedAt + options.timeoutMs - Date.now());
      return context.remainingMs;
    },
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  return context;
}

type Ack = { ok: true } | { ok: false; error: string };

/** Records what the handler asks of the queue; `deadLetterFails` makes every DLQ send fail. */
export class FakeAckQueue implements AckQueue {
  readonly deadLettered: Array<{ messageId: string; reason: string }> = [];
  readonly visibility: Array<{ messageId: string; seconds: number }> = [];
  deadLetterFails = false;
  flushes = 0;

  constructor(readonly url: string) {}

  async deadLetter(message: QueueMessage, reason: string): Promise<Ack> {
    if (this.deadLetterFails) return { ok: false, error: 'DLQ unavailable' };
    this.deadLettered.push({ messageId: message.messageId, reason });
    return { ok: true };
  }

  async changeVisibility(message: QueueMessage, seconds: number): Promise<Ack> {
    this.visibility.push({ messageId: message.messageId, seconds });
    return { ok: true };
  }

  async flush(): Promise<void> {
    this.flushes++;
  }
}

/**
 * Does what the Lambda service does with a partial batch response: deletes every record of the
 * event that is not listed in `batchItemFailures`. Returns the message ids it deleted.
 */
export async function settleLikeLambda(
  sqs: SQSClient,
  queueUrl: string,
  event: SQSEvent,
  response: SQSBatchResponse,
): Promise<string[]> {
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  const done = event.Records.filter((record) => !failed.has(record.messageId));
  for (let start = 0; start < done.length; start += 10) {
    const slice = done.slice(start, start + 10);
    const result = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: slice.map((record, i) => ({ Id: String(i), ReceiptHandle: record.receiptHandle })),
      }),
    );
    if (result.Failed?.length) throw new Error(`delete failed: ${JSON.stringify(result.Failed)}`);
  }
  return done.map((record) => record.messageId);
}
