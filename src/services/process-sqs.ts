/**
 * `process-sqs` as a service: check the queue and the stores, run the pipeline, report.
 * Clients are injected or built from settings; everything built here is closed here.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { MongoClient } from 'mongodb';
import { RequestCounter } from '../aws/clients.js';
import { createSqsClient, SqsQueue } from '../aws/sqs-handler.js';
import type { ProcessSqsSettings } from '../config/config-loader.js';
import { AppError } from '../utils/errors.js';
import type { Logger } from '../utils/logger.js';
import { MessageProcessor } from './message-processor.js';
import { QueueRunner, type RunResult } from './queue-runner.js';
import { createSinks, loadMessageValidator } from './sinks.js';

export interface ProcessSqsDeps {
  logger: Logger;
  /** Aborted on the first SIGINT/SIGTERM. */
  signal?: AbortSignal;
  sqs?: SQSClient;
  s3?: S3Client;
  mongo?: MongoClient;
  /** Counts SQS requests when `sqs` is built here; pass one to count an injected client's too. */
  sqsRequests?: RequestCounter;
  s3Requests?: RequestCounter;
}

export interface ProcessSqsSummary extends RunResult {
  queueUrl: string;
  fifo: boolean;
  stores: string[];
  sqsRequests: Record<string, number>;
  sqsRequestsTotal: number;
  /** SQS requests divided by messages received: the figure SQS bills for. */
  sqsRequestsPerMessage: number;
  s3Requests: Record<string, number>;
  messagesPerSecond: number;
}

export async function processSqs(
  settings: ProcessSqsSettings,
  deps: ProcessSqsDeps,
): Promise<ProcessSqsSummary> {
  const logger = deps.logger;
  const validator = await loadMessageValidator(settings.schemaFile);
  const sqsRequests = deps.sqsRequests ?? new RequestCounter();
  const s3Requests = deps.s3Requests ?? new RequestCounter();
  const sqs = deps.sqs ?? createSqsClient(settings.aws, sqsRequests);
  // The S3 SDK is loaded only when there is an archive to write to.
  const s3 = settings.archive
    ? (deps.s3 ?? (await import('../aws/s3-handler.js')).createS3Client(settings.aws, s3Requests))
    : undefined;
  const queue = new SqsQueue({
    sqs,
    queueUrl: settings.queueUrl,
    ...(settings.dlqUrl !== undefined ? { dlqUrl: settings.dlqUrl } : {}),
    logger,
  });
  const sinks = await createSinks(
    settings,
    { ...(s3 ? { s3 } : {}), ...(deps.mongo ? { mongo: deps.mongo } : {}) },
    logger,
  );
  const processor = new MessageProcessor({
    sinks,
    validator,
    ...(settings.idField !== undefined ? { idField: settings.idField } : {}),
    ...(settings.archive
      ? { archive: { rule: settings.archive.rule, prefix: settings.archive.prefix } }
      : {}),
    logger,
  });
  try {
    const info = await queue.describe();
    if (settings.dlqUrl !== undefined) {
      const dlq = await queue.describe(settings.dlqUrl);
      if (dlq.fifo !== info.fifo) {
        throw new AppError(
          'CONFIG_INVALID',
          `--dlq-url: a ${info.fifo ? 'FIFO' : 'standard'} queue needs a ${info.fifo ? 'FIFO' : 'standard'} DLQ`,
        );
      }
    } else if (info.redriveTargetArn === undefined) {
      logger.warn('no_dead_letter_path', {
        hint: 'invalid messages will be retried forever: set --dlq-url or give the queue a redrive policy',
      });
    }
    await processor.open();
    logger.info('run_started', {
      queueUrl: settings.queueUrl,
      fifo: info.fifo,
      stores: sinks.map((sink) => sink.name),
      receivers: settings.receivers,
      maxInFlight: settings.maxInFlight,
    });
    const runner = new QueueRunner({
      queue,
      processor,
      fifo: info.fifo,
      hasDlq: settings.dlqUrl !== undefined,
      receivers: settings.receivers,
      batchSize: settings.batchSize,
      waitTimeSeconds: settings.waitTimeSeconds,
      visibilityTimeoutSeconds: settings.visibilityTimeoutSeconds,
      heartbeatIntervalMs: settings.heartbeatIntervalMs,
      maxInFlight: settings.maxInFlight,
      untilEmpty: settings.untilEmpty,
      shutdownTimeoutMs: settings.shutdownTimeoutMs,
      retryBackoffMs: settings.retryBackoffMs,
      retryBackoffMaxMs: settings.retryBackoffMaxMs,
      poisonBackoffMs: settings.poisonBackoffMs,
      storeBatchSize: settings.storeBatchSize,
      storeBatchWaitMs: settings.storeBatchWaitMs,
      ...(settings.maxMessages !== undefined ? { maxMessages: settings.maxMessages } : {}),
      ...(settings.maxDurationMs !== undefined ? { maxDurationMs: settings.maxDurationMs } : {}),
      ...(deps.signal ? { signal: deps.signal } : {}),
      logger,
    });
    const result = await runner.run();
    const total = sqsRequests.total();
    return {
      ...result,
      queueUrl: settings.queueUrl,
      fifo: info.fifo,
      stores: sinks.map((sink) => sink.name),
      sqsRequests: sqsRequests.snapshot(),
      sqsRequestsTotal: total,
      sqsRequestsPerMessage: result.received > 0 ? round(total / result.received, 4) : 0,
      s3Requests: s3Requests.snapshot(),
      messagesPerSecond: result.durationMs > 0 ? round((result.received * 1000) / result.durationMs, 1) : 0,
    };
  } finally {
    await processor.close();
    if (!deps.sqs) sqs.destroy();
    if (s3 && !deps.s3) s3.destroy();
  }
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
