/**
 * The SQS edge: receive, and batched acknowledgements. Deletes, visibility changes and DLQ sends
 * are buffered and sent 10 per request (SQS bills per request); entries that a batch call reports
 * in `Failed[]` are retried on their own, and only sender faults (a stale receipt handle) give up.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type BatchResultErrorEntry,
  type Message,
  type MessageAttributeValue,
  type SQSClientConfig,
} from '@aws-sdk/client-sqs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  SQS_MAX_BATCH,
  SQS_MAX_MESSAGE_ATTRIBUTES,
  SQS_MAX_MESSAGE_BYTES,
  SQS_MAX_VISIBILITY_TIMEOUT_SECONDS,
} from '../config/constants.js';
import type { QueueMessage } from '../services/message-processor.js';
import { groupIdOf, receiveCountOf } from '../services/message-processor.js';
import { AppError } from '../utils/errors.js';
import { silentLogger, type Logger } from '../utils/logger.js';
import { MicroBatcher } from '../utils/micro-batcher.js';
import { wrapAwsError } from './aws-errors.js';
import { countRequests, sdkConfig, type RequestCounter } from './clients.js';
import type { AwsSettings } from '../config/config-loader.js';

export interface QueueInfo {
  url: string;
  fifo: boolean;
  arn?: string;
  /** The queue's default visibility timeout. */
  visibilityTimeoutSeconds?: number;
  /** The redrive policy's target, when the queue has one. */
  redriveTargetArn?: string;
  maxReceiveCount?: number;
}

export interface SqsQueueOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Where permanently failing messages go. */
  dlqUrl?: string;
  /** How long a partial acknowledgement batch waits for more entries. Default 50 ms. */
  flushDelayMs?: number;
  /** Attempts for entries a batch call reports as failed (not sender faults). Default 3. */
  entryAttempts?: number;
  logger?: Logger;
}

export interface ReceiveOptions {
  maxMessages: number;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  signal?: AbortSignal;
}

/** Names of the attributes aws-msg adds to a dead-lettered message. */
export const DLQ_ATTRIBUTES = {
  reason: 'aws-msg.reason',
  sourceQueue: 'aws-msg.source-queue',
  messageId: 'aws-msg.message-id',
  receiveCount: 'aws-msg.receive-count',
  failedAt: 'aws-msg.failed-at',
} as const;

const MAX_REASON_CHARS = 1024;

/** An SQS client from typed settings; counts its requests into `counter` when given. */
export function createSqsClient(aws: AwsSettings, counter?: RequestCounter): SQSClient {
  const config: SQSClientConfig = sdkConfig(aws);
  if (aws.sqsEndpoint !== undefined) config.endpoint = aws.sqsEndpoint;
  const client = new SQSClient(config);
  return counter ? countRequests(client, counter) : client;
}

export function isFifoQueueUrl(url: string): boolean {
  return url.endsWith('.fifo');
}

/** Converts an SDK message into the driver-neutral shape the processor takes. */
export function toQueueMessage(message: Message, receivedAt: Date): QueueMessage {
  const messageAttributes: QueueMessage['messageAttributes'] = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    const dataType = value.DataType ?? 'String';
    const raw = value.BinaryValue
      ? Buffer.from(value.BinaryValue).toString('base64')
      : (value.StringValue ?? '');
    messageAttributes[name] = { dataType, value: raw };
  }
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: { ...(message.Attributes as Record<string, string> | undefined) },
    messageAttributes,
    receivedAt,
  };
}

function toAttributeValue(value: { dataType: string; value: string }): MessageAttributeValue {
  if (value.dataType.startsWith('Binary')) {
    return { DataType: value.dataType, BinaryValue: Buffer.from(value.value, 'base64') };
  }
  return { DataType: value.dataType, StringValue: value.value };
}

type EntryResult = { ok: true } | { ok: false; error: string };

/** A message to send (send-messages). */
export interface OutgoingMessage {
  body: string;
  /** FIFO queues only. */
  groupId?: string;
  /** FIFO queues only. */
  deduplicationId?: string;
}

interface BatchResponse {
  Successful?: Array<{ Id?: string }>;
  Failed?: BatchResultErrorEntry[];
}

export class SqsQueue {
  readonly url: string;
  private readonly sqs: SQSClient;
  private readonly dlqUrl: string | undefined;
  private readonly logger: Logger;
  private readonly entryAttempts: number;
  private readonly deletes: MicroBatcher<QueueMessage, EntryResult>;
  private readonly visibility: MicroBatcher<{ message: QueueMessage; seconds: number }, EntryResult>;
  private readonly deadLetters: MicroBatcher<{ message: QueueMessage; reason: string }, EntryResult>;

  constructor(options: SqsQueueOptions) {
    this.sqs = options.sqs;
    this.url = options.queueUrl;
    this.dlqUrl = options.dlqUrl;
    this.logger = options.logger ?? silentLogger;
    this.entryAttempts = options.entryAttempts ?? 3;
    const maxDelayMs = options.flushDelayMs ?? 50;
    this.deletes = new MicroBatcher({
      maxSize: SQS_MAX_BATCH,
      maxDelayMs,
      run: (items) => this.deleteBatch(items),
    });
    this.visibility = new MicroBatcher({
      maxSize: SQS_MAX_BATCH,
      maxDelayMs,
      run: (items) => this.visibilityBatch(items),
    });
    this.deadLetters = new MicroBatcher({
      maxSize: SQS_MAX_BATCH,
      maxDelayMs,
      run: (items) => this.deadLetterBatch(items),
    });
  }

  /** Reads the queue's attributes; proves the queue exists and we may use it. */
  async describe(url: string = this.url): Promise<QueueInfo> {
    try {
      const response = await this.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['QueueArn', 'VisibilityTimeout', 'FifoQueue', 'RedrivePolicy'],
        }),
      );
      const attributes = response.Attributes ?? {};
      const info: QueueInfo = { url, fifo: attributes['FifoQueue'] === 'true' || isFifoQueueUrl(url) };
      if (attributes['QueueArn']) info.arn = attributes['QueueArn'];
      if (attributes['VisibilityTimeout'])
        info.visibilityTimeoutSeconds = Number(attributes['VisibilityTimeout']);
      if (attributes['RedrivePolicy']) {
        try {
          const policy = JSON.parse(attributes['RedrivePolicy']) as {
            deadLetterTargetArn?: string;
            maxReceiveCount?: unknown;
          };
          if (policy.deadLetterTargetArn) info.redriveTargetArn = policy.deadLetterTargetArn;
          if (policy.maxReceiveCount !== undefined) info.maxReceiveCount = Number(policy.maxReceiveCount);
        } catch {
          // an unreadable redrive policy is the queue owner's business; we only report it
        }
      }
      return info;
    } catch (error) {
      const wrapped = wrapAwsError(error, { service: 'SQS', operation: 'GetQueueAttributes', resource: url });
      if (wrapped.code === 'CONFIG_INVALID') throw wrapped;
      throw new AppError('DEPENDENCY_UNAVAILABLE', wrapped.message, {
        cause: error,
        retryable: wrapped.retryable,
      });
    }
  }

  /** One ReceiveMessage call. An aborted long poll returns no messages. */
  async receive(options: ReceiveOptions): Promise<QueueMessage[]> {
    try {
      const response = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.url,
          MaxNumberOfMessages: options.maxMessages,
          WaitTimeSeconds: options.waitTimeSeconds,
          VisibilityTimeout: options.visibilityTimeoutSeconds,
          // Both spellings: AWS accepts both, and emulators differ in which one they honour.
          MessageSystemAttributeNames: ['All'],
          AttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        options.signal ? { abortSignal: options.signal } : undefined,
      );
      const receivedAt = new Date();
      return (response.Messages ?? []).map((message) => toQueueMessage(message, receivedAt));
    } catch (error) {
      if (options.signal?.aborted) return [];
      throw wrapAwsError(error, { service: 'SQS', operation: 'ReceiveMessage', resource: this.url });
    }
  }

  /** Deletes a message (batched). Resolves with whether SQS confirmed it. */
  delete(message: QueueMessage): Promise<EntryResult> {
    return this.deletes.add(message);
  }

  /** Sets a message's visibility timeout (batched): 0 releases it at once. */
  changeVisibility(message: QueueMessage, seconds: number): Promise<EntryResult> {
    return this.visibility.add({ message, seconds });
  }

  /** Copies a message to the DLQ with the reason in its attributes (batched). The caller deletes it after. */
  deadLetter(message: QueueMessage, reason: string): Promise<EntryResult> {
    if (this.dlqUrl === undefined) return Promise.resolve({ ok: false, error: 'no DLQ configured' });
    return this.deadLetters.add({ message, reason });
  }

  /** Extends the visibility of held messages, 10 per call, now (heartbeat). Returns those SQS refused. */
  async extendVisibility(messages: readonly QueueMessage[], seconds: number): Promise<QueueMessage[]> {
    const refused: QueueMessage[] = [];
    for (let start = 0; start < messages.length; start += SQS_MAX_BATCH) {
      const slice = messages.slice(start, start + SQS_MAX_BATCH);
      const results = await this.visibilityBatch(slice.map((message) => ({ message, seconds })));
      results.forEach((result, i) => {
        if (!result.ok) refused.push(slice[i] as QueueMessage);
      });
    }
    return refused;
  }

  /**
   * Sends up to 10 new messages in one SendMessageBatch, retrying entries SQS reports as failed
   * (except sender faults). Returns one result per entry, in order.
   */
  sendBatch(entries: readonly OutgoingMessage[]): Promise<EntryResult[]> {
    return this.sendEntries('SendMessageBatch', [...entries], (pending) =>
      this.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: this.url,
          Entries: pending.map(({ id, item }) => ({
            Id: id,
            MessageBody: item.body,
            ...(item.groupId !== undefined ? { MessageGroupId: item.groupId } : {}),
            ...(item.deduplicationId !== undefined ? { MessageDeduplicationId: item.deduplicationId } : {}),
          })),
        }),
      ),
    );
  }

  /** Sends every buffered acknowledgement now and waits for the answers. */
  async flush(): Promise<void> {
    await this.deadLetters.drain();
    await Promise.all([this.deletes.drain(), this.visibility.drain()]);
  }

  private deleteBatch(messages: QueueMessage[]): Promise<EntryResult[]> {
    return this.sendEntries('DeleteMessageBatch', messages, (entries) =>
      this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.url,
          Entries: entries.map(({ id, item }) => ({ Id: id, ReceiptHandle: item.receiptHandle })),
        }),
      ),
    );
  }

  private visibilityBatch(items: Array<{ message: QueueMessage; seconds: number }>): Promise<EntryResult[]> {
    return this.sendEntries('ChangeMessageVisibilityBatch', items, (entries) =>
      this.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.url,
          Entries: entries.map(({ id, item }) => ({
            Id: id,
            ReceiptHandle: item.message.receiptHandle,
            VisibilityTimeout: withinReceiveWindow(item.message, item.seconds),
          })),
        }),
      ),
    );
  }

  /**
   * SendMessageBatch limits the whole request's payload, not only each message: ten large poison
   * messages in one call would fail together, every time. So the batch is cut where the bodies and
   * attributes add up to 256 KiB, the limit every queue accepts (SQS allows up to 1 MiB where a
   * queue's MaximumMessageSize is raised, but a DLQ may not be); a larger message goes alone.
   */
  private async deadLetterBatch(
    items: Array<{ message: QueueMessage; reason: string }>,
  ): Promise<EntryResult[]> {
    const dlqUrl = this.dlqUrl as string;
    const fifo = isFifoQueueUrl(dlqUrl);
    const failedAt = new Date().toISOString();
    const prepared = items.map((item) => ({
      message: item.message,
      attributes: this.deadLetterAttributes(item.message, item.reason, failedAt),
    }));
    const requests = chunkByBytes(prepared, (p) => sendPayloadBytes(p.message.body, p.attributes), {
      bytes: SQS_MAX_MESSAGE_BYTES,
    });
    const results = await Promise.all(
      requests.map((request) =>
        this.sendEntries('SendMessageBatch', request, (entries) =>
          this.sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: dlqUrl,
              Entries: entries.map(({ id, item }) => ({
                Id: id,
                MessageBody: item.message.body,
                MessageAttributes: item.attributes,
                ...(fifo
                  ? {
                      MessageGroupId: groupIdOf(item.message) ?? 'aws-msg',
                      // The original id: a retried DLQ send within 5 minutes is deduplicated by SQS.
                      MessageDeduplicationId: item.message.messageId,
                    }
                  : {}),
              })),
            }),
          ),
        ),
      ),
    );
    return results.flat();
  }

  private deadLetterAttributes(
    message: QueueMessage,
    reason: string,
    failedAt: string,
  ): Record<string, MessageAttributeValue> {
    const ours: Record<string, MessageAttributeValue> = {
      [DLQ_ATTRIBUTES.reason]: { DataType: 'String', StringValue: reason.slice(0, MAX_REASON_CHARS) },
      [DLQ_ATTRIBUTES.sourceQueue]: { DataType: 'String', StringValue: this.url },
      [DLQ_ATTRIBUTES.messageId]: { DataType: 'String', StringValue: message.messageId },
      [DLQ_ATTRIBUTES.receiveCount]: { DataType: 'Number', StringValue: String(receiveCountOf(message)) },
      [DLQ_ATTRIBUTES.failedAt]: { DataType: 'String', StringValue: failedAt },
    };
    // SQS allows 10 attributes per message: keep the producer's first ones that still fit.
    const room = SQS_MAX_MESSAGE_ATTRIBUTES - Object.keys(ours).length;
    const original = Object.entries(message.messageAttributes).slice(0, room);
    if (Object.keys(message.messageAttributes).length > room) {
      this.logger.warn('dlq_attributes_dropped', { messageId: message.messageId, kept: room });
    }
    return {
      ...Object.fromEntries(original.map(([name, value]) => [name, toAttributeValue(value)])),
      ...ours,
    };
  }

  /**
   * Sends a batch request and retries the entries it reports as failed, except sender faults
   * (stale receipt handle, invalid entry) which cannot succeed. A thrown error (after the SDK's
   * own retries) fails every entry still pending.
   */
  private async sendEntries<T>(
    operation: string,
    items: T[],
    send: (entries: Array<{ id: string; item: T }>) => Promise<BatchResponse>,
  ): Promise<EntryResult[]> {
    const results: Array<EntryResult | undefined> = new Array(items.length).fill(undefined);
    let pending = items.map((item, index) => ({ id: String(index), item }));
    for (let attempt = 1; pending.length > 0; attempt++) {
      let response: BatchResponse;
      try {
        response = await send(pending);
      } catch (error) {
        const message = wrapAwsError(error, { service: 'SQS', operation, resource: this.url }).message;
        for (const entry of pending) results[Number(entry.id)] = { ok: false, error: message };
        break;
      }
      for (const ok of response.Successful ?? []) results[Number(ok.Id)] = { ok: true };
      const retry: typeof pending = [];
      for (const failed of response.Failed ?? []) {
        const entry = pending.find((p) => p.id === failed.Id);
        if (entry === undefined) continue;
        const error = `${failed.Code ?? 'Failed'}: ${failed.Message ?? ''}`.trim();
        if (failed.SenderFault || attempt >= this.entryAttempts)
          results[Number(entry.id)] = { ok: false, error };
        else retry.push(entry);
      }
      // An entry in neither list would be an SQS bug; treat it as failed rather than as done.
      for (const entry of pending) {
        if (results[Number(entry.id)] === undefined && !retry.includes(entry)) {
          results[Number(entry.id)] = { ok: false, error: 'no result for this entry' };
        }
      }
      pending = retry;
      if (pending.length > 0) await sleep(50 * attempt);
    }
    return results.map((result) => result ?? { ok: false, error: 'not sent' });
  }
}

export type { EntryResult };

/** What SQS counts toward a message's size: the body and each attribute's name, type and value. */
export function sendPayloadBytes(body: string, attributes: Record<string, MessageAttributeValue>): number {
  let bytes = Buffer.byteLength(body);
  for (const [name, value] of Object.entries(attributes)) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? '');
    bytes +=
      value.StringValue !== undefined
        ? Buffer.byteLength(value.StringValue)
        : (value.BinaryValue?.byteLength ?? 0);
  }
  return bytes;
}

/**
 * Consecutive runs of `items` whose sizes add up to at most `limit.bytes`, and of at most
 * `limit.count` items (an oversized item runs alone): the batches of one SendMessageBatch each.
 */
export function chunkByBytes<T>(
  items: readonly T[],
  size: (item: T) => number,
  limit: { bytes: number; count?: number },
): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const itemBytes = size(item);
    const full = current.length === (limit.count ?? Infinity) || bytes + itemBytes > limit.bytes;
    if (current.length > 0 && full) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += itemBytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Our clock reads the receive after SQS made it: a little later for the CLI, and for the Lambda up
 * to its event source's batching window (at most 300 s) later. Stay that far inside the window.
 */
const RECEIVE_WINDOW_MARGIN_SECONDS = 300;

/**
 * SQS refuses (rather than shortens) a visibility timeout that would end more than 12 hours after
 * the message was received, so a 12-hour poison backoff, or a heartbeat late in a long hold, would
 * fail and leave the message to reappear at its current timeout. Ask for what is left instead.
 */
export function withinReceiveWindow(message: QueueMessage, seconds: number, now = Date.now()): number {
  const elapsed = Math.ceil((now - message.receivedAt.getTime()) / 1000) + RECEIVE_WINDOW_MARGIN_SECONDS;
  return Math.max(0, Math.min(seconds, SQS_MAX_VISIBILITY_TIMEOUT_SECONDS - elapsed));
}
