/**
 * Process exit codes. They are part of the public contract (documented in README.md),
 * so cron jobs and CI pipelines can branch on them.
 */
export const ExitCode = {
  /** Everything asked for was done. */
  OK: 0,
  /** The run finished, but some items failed (messages not stored, URLs not downloaded). */
  PARTIAL_FAILURE: 1,
  /** Bad usage, configuration or input file. Nothing was attempted. */
  USAGE: 2,
  /** A queue, bucket or database could not be reached (or refused us) at start. Nothing was consumed. */
  UNAVAILABLE: 3,
  /** A bug: an error that no code path expected. */
  INTERNAL: 70,
  /** A second SIGINT/SIGTERM forced an immediate exit (128 + SIGINT). */
  INTERRUPTED: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** The name the CLI is installed under. */
export const CLI_NAME = 'aws-msg';

/** Input JSON files larger than this are refused unless the caller raises the limit. */
export const DEFAULT_MAX_INPUT_FILE_BYTES = 64 * 1024 * 1024;

/** SQS hard limits (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/). */
export const SQS_MAX_BATCH = 10;
export const SQS_MAX_WAIT_TIME_SECONDS = 20;
export const SQS_MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 60 * 60;
export const SQS_MAX_MESSAGE_BYTES = 256 * 1024;
/** SQS message attributes per message. */
export const SQS_MAX_MESSAGE_ATTRIBUTES = 10;
