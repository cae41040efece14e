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

/** Errors that mean the configuration is wrong rather than the service being down. */
function configProblem(error: SdkErrorShape): string | undefined {
  const message = error.message ?? '';
  if (error.name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return 'no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role is available';
  }
  if (/Region is missing/i.test(message)) return 'no AWS region: set AWS_REGION or --region';
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
  const problem = configProblem(e);
  const where = `${context.service} ${context.operation}${context.resource ? ` on ${context.resource}` : ''}`;
  if (problem) return new AppError('CONFIG_INVALID', `${where}: ${problem}`, { cause: error });
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
