/**
 * Wraps AWS SDK errors at the boundary into AppErrors that say which service, operation and
 * resource failed, and whether trying again can help (sqs-consumer's `toSQSError`, generalised).
 */
import { AppError, type ErrorCode } from '../utils/errors.js';

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $retryable?: unknown;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
}

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  'RequestLimitExceeded',
  'KMSThrottlingException',
  // SQS on an SSE-KMS queue: KMS throttled it. A client fault with a 4xx status, so neither the
  // SDK's throttling list nor the status rule below would retry it.
  'KmsThrottled',
  // SQS: too many messages in flight on the queue (120,000 standard, 20,000 FIFO); they drain.
  'OverLimit',
]);

const TRANSIENT_NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'NetworkingError',
]);

/** Whether an SDK (or network) error may succeed when tried again later. */
export function isRetryableAwsError(error: unknown): boolean {
  const e = (error ?? {}) as SdkErrorShape;
  if (e.$retryable) return true;
  const name = e.name ?? '';
  if (THROTTLING.has(name) || TRANSIENT_NETWORK.has(name) || TRANSIENT_NETWORK.has(e.code ?? '')) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429 || status === 408;
  return e.$fault === 'server';
}

/**
 * Errors that mean the configuration is wrong rather than the service being down. Missing
 * credentials are a configuration problem at start (the first request fails and the run exits 2),
 * but they stay retryable: in the middle of a run they are an instance-metadata or container
 * credentials endpoint that failed to refresh, and a long-running consumer must ride that out.
 */
function configProblem(error: SdkErrorShape): { problem: string; retryable: boolean } | undefined {
  const message = error.message ?? '';
  if (error.name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return {
      problem:
        'no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role is available',
      retryable: true,
    };
  }
  if (/Region is missing/i.test(message))
    return { problem: 'no AWS region: set AWS_REGION or --region', retryable: false };
  return undefined;
}

export interface AwsErrorContext {
  service: 'SQS' | 'S3';
  operation: string;
  /** Queue URL, bucket/key... named in the message. Never a secret. */
  resource?: string;
  /** Extra structured details for logs, e.g. message ids. */
  details?: Record<string, unknown>;
}

/** Wraps any error thrown by an SDK call. Returns the error unchanged if it already is an AppError. */
export function wrapAwsError(error: unknown, context: AwsErrorContext): AppError {
  if (error instanceof AppError) return error;
  const e = (error ?? {}) as SdkErrorShape;
  const config = configProblem(e);
  const where = `${context.service} ${context.operation}${context.resource ? ` on ${context.resource}` : ''}`;
  if (config)
    return new AppError('CONFIG_INVALID', `${where}: ${config.problem}`, {
      cause: error,
      retryable: config.retryable,
    });
  const code: ErrorCode = context.service === 'SQS' ? 'SQS_ERROR' : 'S3_ERROR';
  const status = e.$metadata?.httpStatusCode;
  const reason = [e.name && e.name !== 'Error' ? e.name : e.code, e.message].filter(Boolean).join(': ');
  const message = `${where} failed${status ? ` (HTTP ${status})` : ''}: ${reason || 'unknown error'}`;
  return new AppError(code, message, {
    cause: error,
    retryable: isRetryableAwsError(error),
    details: { ...context.details, service: context.service, operation: context.operation },
  });
}
