/**
 * The one retry layer of `download-urls`. Nothing below it retries: the undici Agent has no retry
 * interceptor, and S3 errors are left to the SDK's own retry (never retried here), so attempts
 * never multiply.
 *
 * Retried: network errors, timeouts, truncated bodies, 408, 429 and 5xx. Everything else (other
 * 4xx, a checksum mismatch, a size limit, a local disk error) fails at once.
 */
import pRetry from 'p-retry';
import { AppError } from '../../utils/errors.js';
import type { FailureReason } from './types.js';

export interface DownloadErrorOptions {
  retryable: boolean;
  statusCode?: number;
  /** Server-requested wait (Retry-After), already converted to milliseconds. */
  retryAfterMs?: number;
  cause?: unknown;
}

/** A classified download failure. `message` is safe to log and report (no header values). */
export class DownloadError extends AppError {
  readonly reason: FailureReason;
  readonly statusCode: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(reason: FailureReason, message: string, options: DownloadErrorOptions) {
    super('DOWNLOAD_FAILED', message, { retryable: options.retryable, cause: options.cause });
    this.name = 'DownloadError';
    this.reason = reason;
    this.statusCode = options.statusCode;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** 408 Request Timeout, 429 Too Many Requests and every 5xx may succeed later. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * Parses a Retry-After value (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns
 * milliseconds from `nowMs` (0 for a date in the past), or undefined when the value is unusable.
 */
export function parseRetryAfter(
  value: string | string[] | undefined,
  nowMs: number = Date.now(),
): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text === '') return undefined;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds * 1000) ? seconds * 1000 : undefined;
  }
  // Only the date formats HTTP allows carry letters and a comma or GMT; a bare "-5" or "1.5" is invalid.
  if (!/[a-z]/i.test(text)) return undefined;
  // asctime (`Sun Nov  6 08:49:37 1994`) names no zone, and Date.parse would read it as local time.
  const asctime = /^[a-z]{3} [a-z]{3} +\d{1,2} \d{2}:\d{2}:\d{2} \d{4}$/i.test(text);
  const at = Date.parse(asctime ? `${text} GMT` : text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  // The body ended before Content-Length bytes arrived: a truncated transfer.
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const TIMEOUT_TEXT: Record<string, string> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  UND_ERR_HEADERS_TIMEOUT: 'no response headers within the headers timeout',
  UND_ERR_BODY_TIMEOUT: 'the body stalled longer than the body timeout',
};
// File-system calls: a failure there is local (disk full, permissions) and retrying cannot help.
const FS_SYSCALLS = new Set([
  'open',
  'write',
  'writev',
  'close',
  'rename',
  'mkdir',
  'unlink',
  'fsync',
  'stat',
]);

interface ErrorShape {
  name?: string;
  code?: string;
  message?: string;
  syscall?: string;
  $metadata?: unknown;
  cause?: unknown;
}

/** Maps anything thrown during an attempt to a DownloadError that says whether to retry. */
export function classifyError(error: unknown): DownloadError {
  if (error instanceof DownloadError) return error;
  if (error instanceof AppError && error.code === 'S3_ERROR') {
    return new DownloadError('s3_failed', error.message, { retryable: false, cause: error });
  }
  const e = (error ?? {}) as ErrorShape;
  const code = e.code ?? '';
  const message = e.message ?? String(error);
  if (TIMEOUT_CODES.has(code)) {
    return new DownloadError('timeout', TIMEOUT_TEXT[code] ?? message, { retryable: true, cause: error });
  }
  if (code === 'UND_ERR_INVALID_ARG' && /redirect loop/i.test(message)) {
    return new DownloadError('redirect_loop', 'redirect loop detected', { retryable: false, cause: error });
  }
  if (e.name === 'PathEscapeError') {
    return new DownloadError('write_failed', message, { retryable: false, cause: error });
  }
  if (e.name === 'AbortError' || code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR') {
    return new DownloadError('interrupted', 'interrupted', { retryable: false, cause: error });
  }
  if (e.$metadata !== undefined) {
    // The SDK already retried this S3 call as often as AWS_MAX_ATTEMPTS allows.
    return new DownloadError('s3_failed', `S3: ${e.name ?? 'error'}: ${message}`, {
      retryable: false,
      cause: error,
    });
  }
  if (code === 'ENOTFOUND') {
    return new DownloadError('network', `host not found (${message})`, { retryable: false, cause: error });
  }
  if (e.syscall !== undefined && FS_SYSCALLS.has(e.syscall)) {
    return new DownloadError('write_failed', `writing the file failed: ${code || message}`, {
      retryable: false,
      cause: error,
    });
  }
  if (NETWORK_CODES.has(code) || code.startsWith('HPE_') || e.name === 'HTTPParserError') {
    return new DownloadError('network', `${code ? `${code}: ` : ''}${message}`, {
      retryable: true,
      cause: error,
    });
  }
  if (e.cause !== undefined && e.cause !== error) {
    const inner = classifyError(e.cause);
    if (inner.reason !== 'internal') return inner;
  }
  return new DownloadError('internal', message, { retryable: false, cause: error });
}

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** Backoff base; doubles per retry. */
  baseDelayMs: number;
  /** Cap on any single wait, Retry-After included. */
  maxDelayMs: number;
}

/**
 * Exponential backoff with "equal jitter": half of the step is fixed, half random. The fixed half
 * keeps a floor so a retry never hammers a struggling server; the random half spreads a herd.
 * `attempt` is the number of the attempt that just failed (1 for the first).
 */
export function backoffDelayMs(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const step = Math.min(policy.baseDelayMs * 2 ** Math.max(0, attempt - 1), policy.maxDelayMs);
  return Math.round(step / 2 + random() * (step / 2));
}

/** The wait before the next attempt: the server's Retry-After when it gave one, else the backoff; capped. */
export function retryDelayMs(
  attempt: number,
  error: DownloadError,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  if (error.retryAfterMs !== undefined) return Math.min(error.retryAfterMs, policy.maxDelayMs);
  return backoffDelayMs(attempt, policy, random);
}

/** Resolves after `ms`, or rejects with an AbortError when `signal` fires first. Uses global timers (fakeable). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new DOMException('aborted', 'AbortError'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolvePromise();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryHooks {
  /** Stops further attempts (the attempt in flight is not interrupted). */
  signal?: AbortSignal;
  /** Default: `sleep` above. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  /** Called before waiting for a retry. */
  onRetry?: (info: { attempt: number; delayMs: number; error: DownloadError }) => void;
}

/** The outcome of `withRetries`: the value or the last error, and how many attempts were made. */
export type RetryOutcome<T> =
  { ok: true; value: T; attempts: number } | { ok: false; error: DownloadError; attempts: number };

/**
 * Runs `attempt(n)` until it succeeds, fails with a permanent error, or the retries are spent.
 * Never throws: the caller records the outcome either way.
 *
 * p-retry counts the attempts and decides whether to go on; the wait is ours, in
 * `onFailedAttempt` (as p-retry's documentation shows), because it must honour each error's own
 * Retry-After, which p-retry's backoff cannot. Its own delay is therefore zero.
 */
export async function withRetries<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<RetryOutcome<T>> {
  const wait = hooks.sleep ?? sleep;
  let attempts = 0;
  const interrupted = (error: DownloadError, when: string) =>
    new DownloadError('interrupted', `interrupted ${when}: ${error.message}`, {
      retryable: false,
      cause: error,
    });
  try {
    const value = await pRetry(
      async (n: number) => {
        attempts = n;
        try {
          return await attempt(n);
        } catch (thrown) {
          // Classified here, so that p-retry's own rules (it never retries a TypeError) don't apply.
          throw classifyError(thrown);
        }
      },
      {
        retries: policy.retries,
        minTimeout: 0,
        maxTimeout: 0,
        randomize: false,
        shouldRetry: ({ error }) => classifyError(error).retryable,
        onFailedAttempt: async ({ error: thrown, attemptNumber, retriesLeft }) => {
          const error = classifyError(thrown);
          if (!error.retryable || retriesLeft === 0) return;
          if (hooks.signal?.aborted) throw interrupted(error, 'before retrying');
          const delayMs = retryDelayMs(attemptNumber, error, policy, hooks.random);
          hooks.onRetry?.({ attempt: attemptNumber, delayMs, error });
          try {
            await wait(delayMs, hooks.signal);
          } catch {
            throw interrupted(error, 'while waiting to retry');
          }
        },
      },
    );
    return { ok: true, value, attempts };
  } catch (thrown) {
    return { ok: false, error: classifyError(thrown), attempts };
  }
}
