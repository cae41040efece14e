/**
 * SDK client construction from typed settings, and a request counter. SQS bills per request, so
 * requests per message is the cost users pay; every client we build counts its HTTP attempts by
 * operation (retries included, since each is billed).
 */
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { AwsSettings } from '../config/config-loader.js';

/** Counts requests per operation name (`ReceiveMessage`, `DeleteMessageBatch`, `PutObject`...). */
export class RequestCounter {
  private readonly counts = new Map<string, number>();

  add(operation: string, n = 1): void {
    this.counts.set(operation, (this.counts.get(operation) ?? 0) + n);
  }

  get(operation: string): number {
    return this.counts.get(operation) ?? 0;
  }

  total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }

  /** A plain object, sorted by operation name, for summaries. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }
}

interface MiddlewareHost {
  middlewareStack: {
    add(
      middleware: (
        next: (args: unknown) => Promise<unknown>,
        context: { commandName?: string },
      ) => (args: unknown) => Promise<unknown>,
      options: { step: 'deserialize'; name: string; override?: boolean },
    ): void;
  };
}

/**
 * Counts every HTTP attempt made by `client`. The deserialize step sits inside the retry
 * middleware, so a retried request is counted once per attempt, as AWS bills it.
 */
export function countRequests<T extends object>(client: T, counter: RequestCounter): T {
  (client as unknown as MiddlewareHost).middlewareStack.add(
    (next, context) => async (args) => {
      counter.add((context.commandName ?? 'Unknown').replace(/Command$/, ''));
      return next(args);
    },
    { step: 'deserialize', name: 'awsMsgRequestCounter', override: true },
  );
  return client;
}

function baseConfig(aws: AwsSettings): SQSClientConfig & S3ClientConfig {
  const config: SQSClientConfig & S3ClientConfig = { maxAttempts: aws.maxAttempts };
  if (aws.region !== undefined) config.region = aws.region;
  if (aws.profile !== undefined) config.profile = aws.profile;
  if (aws.credentials !== undefined) config.credentials = aws.credentials;
  return config;
}

export function createSqsClient(aws: AwsSettings, counter?: RequestCounter): SQSClient {
  const config: SQSClientConfig = baseConfig(aws);
  if (aws.sqsEndpoint !== undefined) config.endpoint = aws.sqsEndpoint;
  const client = new SQSClient(config);
  return counter ? countRequests(client, counter) : client;
}

export function createS3Client(aws: AwsSettings, counter?: RequestCounter): S3Client {
  const config: S3ClientConfig = { ...baseConfig(aws), forcePathStyle: aws.s3ForcePathStyle };
  if (aws.s3Endpoint !== undefined) config.endpoint = aws.s3Endpoint;
  const client = new S3Client(config);
  return counter ? countRequests(client, counter) : client;
}
