import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { jest } from '@jest/globals';
import { buildSync } from 'esbuild';
import { errors } from 'undici';
import {
  DownloadError,
  backoffDelayMs,
  classifyError,
  isRetryableStatus,
  parseRetryAfter,
  retryDelayMs,
  sleep,
  withRetries,
  type RetryPolicy,
} from '../../../src/services/download/retry-policy.js';
import { PathEscapeError } from '../../../src/services/download/naming.js';
import { AppError } from '../../../src/utils/errors.js';

const policy: RetryPolicy = { retries: 3, baseDelayMs: 1000, maxDelayMs: 30_000 };

describe('isRetryableStatus', () => {
  it.each([408, 429, 500, 502, 503, 504, 599])('%i is retried', (status) => {
    expect(isRetryableStatus(status)).toBe(true);
  });

  it.each([400, 401, 403, 404, 410, 416, 451])('%i fails at once', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');

  it.each([
    ['120', 120_000],
    [' 3 ', 3000],
    ['0', 0],
    [['7', '9'], 7000],
    ['Wed, 21 Oct 2015 07:28:30 GMT', 30_000],
    ['Wed, 21 Oct 2015 07:27:00 GMT', 0],
    ['Wednesday, 21-Oct-15 07:29:00 GMT', 60_000],
    ['-5', undefined],
    ['1.5', undefined],
    ['soon', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j -> %j ms', (value, expected) => {
    expect(parseRetryAfter(value as string | string[] | undefined, now)).toBe(expected);
  });

  it('reads an asctime date as GMT, whatever the local time zone', () => {
    // Jest's process.env is a copy, so the time zone can only change in a child process: it runs
    // the module, bundled, with TZ set.
    const { outputFiles } = buildSync({
      entryPoints: [
        fileURLToPath(new URL('../../../src/services/download/retry-policy.ts', import.meta.url)),
      ],
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
    });
    const code = `${outputFiles[0]!.text}
      const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
      console.log(JSON.stringify([
        parseRetryAfter('Wed Oct 21 07:28:30 2015', now),
        parseRetryAfter('Wed Oct  1 07:28:30 2015', now),
      ]));`;
    const out = execFileSync(process.execPath, ['--input-type=module'], {
      input: code,
      env: { PATH: process.env['PATH'], TZ: 'America/New_York' },
    });
    expect(JSON.parse(out.toString())).toEqual([30_000, 0]);
  });
});

describe('classifyError', () => {
  it.each([
    [new errors.HeadersTimeoutError(), 'timeout', true],
    [new errors.BodyTimeoutError(), 'timeout', true],
    [new errors.ConnectTimeoutError(), 'timeout', true],
    [new errors.SocketError('other side closed'), 'network', true],
    [new errors.ResponseContentLengthMismatchError(), 'network', true],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' }), 'network', true],
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'network', true],
    [Object.assign(new Error('getaddrinfo EAI_AGAIN x'), { code: 'EAI_AGAIN' }), 'network', true],
    [Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' }), 'network', false],
    [new errors.InvalidArgumentError('Redirect loop detected. Cannot redirect'), 'redirect_loop', false],
    [new errors.RequestAbortedError(), 'interrupted', false],
    [Object.assign(new Error('no space'), { code: 'ENOSPC', syscall: 'write' }), 'write_failed', false],
    [Object.assign(new Error('denied'), { code: 'EACCES', syscall: 'open' }), 'write_failed', false],
    [
      Object.assign(new Error('slow down'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }),
      's3_failed',
      false,
    ],
    [new AppError('S3_ERROR', 'S3 Upload failed'), 's3_failed', false],
    [new PathEscapeError('link/x.txt'), 'write_failed', false],
    [new TypeError('undefined is not a function'), 'internal', false],
  ])('%p -> %s (retryable %p)', (error, reason, retryable) => {
    const classified = classifyError(error);
    expect(classified.reason).toBe(reason);
    expect(classified.retryable).toBe(retryable);
  });

  it('keeps a DownloadError as it is', () => {
    const error = new DownloadError('http_status', 'HTTP 503', {
      retryable: true,
      statusCode: 503,
      retryAfterMs: 5,
    });
    expect(classifyError(error)).toBe(error);
  });

  it('looks into the cause of a wrapper', () => {
    const wrapped = new Error('fetch failed', {
      cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }),
    });
    expect(classifyError(wrapped)).toMatchObject({ reason: 'network', retryable: true });
  });
});

describe('backoff', () => {
  it('doubles per attempt with half of each step random', () => {
    expect(backoffDelayMs(1, policy, () => 0)).toBe(500);
    expect(backoffDelayMs(1, policy, () => 1)).toBe(1000);
    expect(backoffDelayMs(2, policy, () => 0)).toBe(1000);
    expect(backoffDelayMs(3, policy, () => 1)).toBe(4000);
  });

  it('never exceeds the cap', () => {
    expect(backoffDelayMs(20, policy, () => 1)).toBe(30_000);
    expect(backoffDelayMs(20, policy, () => 0)).toBe(15_000);
  });

  it('uses Retry-After instead of the backoff, capped by --max-retry-wait', () => {
    const after = (ms: number) =>
      new DownloadError('http_status', 'HTTP 503', { retryable: true, retryAfterMs: ms });
    expect(retryDelayMs(1, after(7000), policy, () => 1)).toBe(7000);
    expect(retryDelayMs(1, after(0), policy, () => 1)).toBe(0);
    expect(retryDelayMs(1, after(3_600_000), policy, () => 1)).toBe(30_000);
  });
});

describe('withRetries', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const transient = (retryAfterMs?: number) =>
    new DownloadError('http_status', 'HTTP 503', {
      retryable: true,
      statusCode: 503,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });

  it('waits exactly the Retry-After before the next attempt', async () => {
    // Prepare
    const calls: number[] = [];
    const attempt = jest.fn(async (n: number) => {
      calls.push(Date.now());
      if (n === 1) throw transient(5000);
      return 'ok';
    });

    // Act
    const outcome = withRetries(attempt, policy);
    await jest.advanceTimersByTimeAsync(4999);
    const before = attempt.mock.calls.length;
    await jest.advanceTimersByTimeAsync(1);

    // Assess
    expect(before).toBe(1);
    await expect(outcome).resolves.toEqual({ ok: true, value: 'ok', attempts: 2 });
    expect(calls[1]! - calls[0]!).toBe(5000);
  });

  it('makes 1 + retries attempts, then returns the last error', async () => {
    // Prepare
    const attempt = jest.fn(async () => {
      throw transient();
    });

    // Act
    const outcome = withRetries(attempt, { ...policy, retries: 2 }, { random: () => 0 });
    await jest.advanceTimersByTimeAsync(60_000);

    // Assess
    await expect(outcome).resolves.toMatchObject({
      ok: false,
      attempts: 3,
      error: { reason: 'http_status' },
    });
    expect(attempt).toHaveBeenCalledTimes(3);
  });

  it('does not retry a permanent error', async () => {
    const attempt = jest.fn(async () => {
      throw new DownloadError('http_status', 'HTTP 404', { retryable: false, statusCode: 404 });
    });

    const outcome = await withRetries(attempt, policy);

    expect(outcome).toMatchObject({ ok: false, attempts: 1 });
    expect(attempt).toHaveBeenCalledTimes(1);
  });

  it('stops waiting when the run is interrupted, without another attempt', async () => {
    // Prepare
    const controller = new AbortController();
    const attempt = jest.fn(async () => {
      throw transient(10_000);
    });

    // Act
    const outcome = withRetries(attempt, policy, { signal: controller.signal });
    await jest.advanceTimersByTimeAsync(100);
    controller.abort();

    // Assess
    await expect(outcome).resolves.toMatchObject({
      ok: false,
      attempts: 1,
      error: { reason: 'interrupted' },
    });
    expect(attempt).toHaveBeenCalledTimes(1);
  });
});

describe('sleep', () => {
  it('rejects at once for an aborted signal', async () => {
    await expect(sleep(10_000, AbortSignal.abort())).rejects.toBeDefined();
  });
});
