/**
 * `send-messages`: sends a JSON array of bodies to a queue, 10 per SendMessageBatch, several
 * batches at once. FIFO queues get a group id (fixed or from a body field) and a deduplication id
 * (from a body field, else the SHA-256 of the body), so a rerun within SQS's 5-minute
 * deduplication window does not send duplicates.
 */
import { createHash } from 'node:crypto';
import type { SQSClient } from '@aws-sdk/client-sqs';
import pLimit from 'p-limit';
import { RequestCounter } from '../aws/clients.js';
import {
  chunkByBytes,
  createSqsClient,
  isFifoQueueUrl,
  SqsQueue,
  type OutgoingMessage,
} from '../aws/sqs-handler.js';
import type { SendMessagesSettings } from '../config/config-loader.js';
import { SQS_MAX_BATCH, SQS_MAX_MESSAGE_BYTES } from '../config/constants.js';
import { AppError } from '../utils/errors.js';
import { compileSchema, readValidatedJson } from '../utils/file-reader.js';
import { getPath, scalarToKey } from '../utils/json-path.js';
import type { Logger } from '../utils/logger.js';

export interface SendMessagesDeps {
  logger: Logger;
  sqs?: SQSClient;
  requests?: RequestCounter;
}

export interface SendSummary {
  file: string;
  queueUrl: string;
  fifo: boolean;
  messages: number;
  sent: number;
  failed: number;
  /** Up to 20 failures: the array index of the body and why. */
  failures: Array<{ index: number; error: string }>;
  batches: number;
  sqsRequests: Record<string, number>;
  durationMs: number;
  messagesPerSecond: number;
}

const MAX_REPORTED_FAILURES = 20;

const fileSchema = compileSchema<unknown[]>(
  { type: 'array', description: 'message bodies; each element is sent as its JSON text' },
  'messages file schema',
);

/** Turns the file's bodies into outgoing messages; input problems name the JSON pointer. */
export function buildOutgoing(
  bodies: readonly unknown[],
  settings: SendMessagesSettings,
  fifo: boolean,
): OutgoingMessage[] {
  const label = settings.file;
  return bodies.map((value, index) => {
    const body = JSON.stringify(value);
    const bytes = Buffer.byteLength(body);
    if (bytes > SQS_MAX_MESSAGE_BYTES) {
      throw new AppError(
        'INPUT_SCHEMA',
        `${label}: /${index}: the body is ${bytes} bytes, above the ${SQS_MAX_MESSAGE_BYTES}-byte SQS limit`,
      );
    }
    const message: OutgoingMessage = { body };
    if (!fifo) return message;
    const fieldValue = (field: string, flag: string): string => {
      const key = scalarToKey(getPath(value, field));
      if (key === undefined) {
        throw new AppError(
          'INPUT_SCHEMA',
          `${label}: /${index}/${field.split('.').join('/')}: ${flag} ${field} is missing or not a string or number`,
        );
      }
      return key;
    };
    message.groupId =
      settings.groupIdField !== undefined
        ? fieldValue(settings.groupIdField, '--group-id-field')
        : (settings.groupId as string);
    message.deduplicationId =
      settings.dedupIdField !== undefined
        ? fieldValue(settings.dedupIdField, '--dedup-id-field')
        : createHash('sha256').update(body).digest('hex');
    return message;
  });
}

/** Splits into batches of at most 10 messages and at most the SQS batch payload limit. */
export function toBatches(
  messages: readonly OutgoingMessage[],
): Array<{ start: number; items: OutgoingMessage[] }> {
  let start = 0;
  return chunkByBytes(messages, (message) => Buffer.byteLength(message.body), {
    bytes: SQS_MAX_MESSAGE_BYTES,
    count: SQS_MAX_BATCH,
  }).map((items) => {
    const batch = { start, items };
    start += items.length;
    return batch;
  });
}

export async function sendMessages(
  settings: SendMessagesSettings,
  deps: SendMessagesDeps,
): Promise<SendSummary> {
  const started = Date.now();
  const bodies = await readValidatedJson(settings.file, fileSchema, { maxBytes: settings.maxInputBytes });
  const fifo = isFifoQueueUrl(settings.queueUrl);
  if (fifo && settings.groupId === undefined && settings.groupIdField === undefined) {
    throw new AppError('CONFIG_INVALID', '--group-id or --group-id-field is required for a FIFO queue');
  }
  const outgoing = buildOutgoing(bodies, settings, fifo);
  const requests = deps.requests ?? new RequestCounter();
  const sqs = deps.sqs ?? createSqsClient(settings.aws, requests);
  const queue = new SqsQueue({ sqs, queueUrl: settings.queueUrl, logger: deps.logger });
  try {
    await queue.describe();
    const limit = pLimit(settings.concurrency);
    const batches = toBatches(outgoing);
    const failures: Array<{ index: number; error: string }> = [];
    let sent = 0;
    await Promise.all(
      batches.map((batch) =>
        limit(async () => {
          const results = await queue.sendBatch(batch.items);
          results.forEach((result, offset) => {
            if (result.ok) sent++;
            else failures.push({ index: batch.start + offset, error: result.error });
          });
        }),
      ),
    );
    failures.sort((a, b) => a.index - b.index);
    for (const failure of failures.slice(0, MAX_REPORTED_FAILURES)) deps.logger.warn('send_failed', failure);
    const durationMs = Date.now() - started;
    return {
      file: settings.file,
      queueUrl: settings.queueUrl,
      fifo,
      messages: outgoing.length,
      sent,
      failed: failures.length,
      failures: failures.slice(0, MAX_REPORTED_FAILURES),
      batches: batches.length,
      sqsRequests: requests.snapshot(),
      durationMs,
      messagesPerSecond: durationMs > 0 ? Math.round((sent * 10_000) / durationMs) / 10 : 0,
    };
  } finally {
    if (!deps.sqs) sqs.destroy();
  }
}
