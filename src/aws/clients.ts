/**
 * What every SDK client we build shares: the settings it is built from, and a request counter.
 * SQS bills per request, so requests per message is the cost users pay; every client counts its
 * HTTP attempts by operation (retries included, since each is billed).
 *
 * The clients themselves are built next to their edges (`createSqsClient` in sqs-handler.ts,
 * `createS3Client` in s3-handler.ts), so that a command loads only the SDK it uses.
 */
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

/** The settings every client shares: region, profile, credentials, attempts. */
export function sdkConfig(aws: AwsSettings): {
  maxAttempts: number;
  region?: string;
  profile?: string;
  credentials?: AwsSettings['credentials'];
} {
  const config: ReturnType<typeof sdkConfig> = { maxAttempts: aws.maxAttempts };
  if (aws.region !== undefined) config.region = aws.region;
  // A profile wins over static keys, as in the SDK's default chain; never pass both.
  if (aws.profile !== undefined) config.profile = aws.profile;
  else if (aws.credentials !== undefined) config.credentials = aws.credentials;
  return config;
}
