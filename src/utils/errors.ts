import { ExitCode, type ExitCodeValue } from '../config/constants.js';

/** Every machine-readable error code the tool can raise. */
export type ErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'INPUT_NOT_FOUND'
  | 'INPUT_TOO_LARGE'
  | 'INPUT_INVALID_JSON'
  | 'INPUT_SCHEMA'
  | 'DEPENDENCY_UNAVAILABLE'
  | 'SQS_ERROR'
  | 'S3_ERROR'
  | 'MONGO_ERROR'
  | 'MSSQL_ERROR'
  | 'MESSAGE_INVALID'
  | 'DOWNLOAD_FAILED'
  | 'INTERRUPTED'
  | 'INTERNAL';

export interface AppErrorOptions {
  /** Defaults to the exit code that fits `code`. */
  exitCode?: ExitCodeValue;
  /** Whether trying the same operation again later can succeed. Default false. */
  retryable?: boolean;
  cause?: unknown;
  /** Extra structured context for logs (queue URL, message ids, file path). Never secrets. */
  details?: Record<string, unknown>;
}

const DEFAULT_EXIT: Record<ErrorCode, ExitCodeValue> = {
  USAGE: ExitCode.USAGE,
  CONFIG_INVALID: ExitCode.USAGE,
  INPUT_NOT_FOUND: ExitCode.USAGE,
  INPUT_TOO_LARGE: ExitCode.USAGE,
  INPUT_INVALID_JSON: ExitCode.USAGE,
  INPUT_SCHEMA: ExitCode.USAGE,
  DEPENDENCY_UNAVAILABLE: ExitCode.UNAVAILABLE,
  SQS_ERROR: ExitCode.UNAVAILABLE,
  S3_ERROR: ExitCode.UNAVAILABLE,
  MONGO_ERROR: ExitCode.UNAVAILABLE,
  MSSQL_ERROR: ExitCode.UNAVAILABLE,
  MESSAGE_INVALID: ExitCode.PARTIAL_FAILURE,
  DOWNLOAD_FAILED: ExitCode.PARTIAL_FAILURE,
  INTERRUPTED: ExitCode.INTERRUPTED,
  INTERNAL: ExitCode.INTERNAL,
};

/**
 * The one error base class. Boundaries (SDK calls, drivers, file reads) wrap what they catch
 * into an AppError so that `main.ts` can print one line and pick the exit code.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCodeValue;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.exitCode = options.exitCode ?? DEFAULT_EXIT[code];
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/** Several configuration problems found in one pass; each is reported on its own line. */
export class ConfigError extends AppError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('CONFIG_INVALID', problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/** A short human description of any thrown value, for logs and per-item reports. */
export function describeError(error: unknown): string {
  if (error instanceof AppError) return error.message;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const prefix = typeof code === 'string' && !error.message.includes(code) ? `${code}: ` : '';
    return `${prefix}${error.message || error.name}`;
  }
  return String(error);
}
