/**
 * Every setting the tool reads, as tables of specs (flag, environment variable, default, parser).
 * `config-loader.ts` resolves them with the precedence flag > environment > .env > default;
 * `main.ts` builds the commander options from the same tables; `.env.example` and the README
 * document the same names.
 */
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../utils/logger.js';
import { InvalidMongoUri, parseMongoUri } from './mongo-uri.js';
import { SQS_MAX_BATCH, SQS_MAX_VISIBILITY_TIMEOUT_SECONDS, SQS_MAX_WAIT_TIME_SECONDS } from './constants.js';
import {
  InvalidValue,
  parseBoolean,
  parseBytes,
  parseDurationMs,
  parseEnum,
  parseInteger,
  parseString,
  parseUrl,
  spec,
  type Parser,
  type Resolved,
} from './options.js';

const HOUR_MS = 3_600_000;
const MAX_VISIBILITY_MS = SQS_MAX_VISIBILITY_TIMEOUT_SECONDS * 1000;

export const GLOBAL_OPTIONS = {
  logLevel: spec<LogLevel>({
    flags: '--log-level <level>',
    env: ['LOG_LEVEL'],
    description: `log verbosity: ${LOG_LEVELS.join(', ')}`,
    default: 'info',
    parse: parseEnum(LOG_LEVELS),
  }),
  logFormat: spec<LogFormat>({
    flags: '--log-format <format>',
    env: ['LOG_FORMAT'],
    description: `log line format on stderr: ${LOG_FORMATS.join(', ')}`,
    default: () => (process.stderr.isTTY ? 'pretty' : 'json'),
    defaultLabel: 'pretty on a terminal, json otherwise',
    parse: parseEnum(LOG_FORMATS),
  }),
  envFile: spec({
    flags: '--env-file <path>',
    env: ['AWS_MSG_ENV_FILE'],
    description: 'dotenv file to read settings from (missing is fine unless named explicitly)',
    default: '.env',
    parse: parseString('a file path'),
  }),
};
export type GlobalSettings = Resolved<typeof GLOBAL_OPTIONS>;

/** AWS settings follow the SDK's own conventions; nothing here is invented. */
export const AWS_OPTIONS = {
  region: spec({
    flags: '--region <region>',
    env: ['AWS_REGION', 'AWS_DEFAULT_REGION'],
    description: 'AWS region (default: the SDK chain, e.g. ~/.aws/config)',
    parse: parseString('a region name such as eu-west-1'),
  }),
  profile: spec({
    flags: '--profile <name>',
    env: ['AWS_PROFILE'],
    description: 'named profile from ~/.aws/config and ~/.aws/credentials',
    parse: parseString('a profile name'),
  }),
  endpointUrl: spec({
    flags: '--endpoint-url <url>',
    env: ['AWS_ENDPOINT_URL'],
    description: 'endpoint for every AWS service (a local emulator)',
    parse: parseUrl(['http', 'https']),
  }),
  sqsEndpointUrl: spec({
    env: ['AWS_ENDPOINT_URL_SQS'],
    description: 'endpoint for SQS only; wins over AWS_ENDPOINT_URL, not over --endpoint-url',
    parse: parseUrl(['http', 'https']),
  }),
  s3EndpointUrl: spec({
    env: ['AWS_ENDPOINT_URL_S3'],
    description: 'endpoint for S3 only; wins over AWS_ENDPOINT_URL, not over --endpoint-url',
    parse: parseUrl(['http', 'https']),
  }),
  s3ForcePathStyle: spec({
    env: ['AWS_S3_FORCE_PATH_STYLE'],
    description: 'path-style S3 URLs (default: true when an S3 endpoint is overridden, else false)',
    parse: parseBoolean,
  }),
  accessKeyId: spec({
    env: ['AWS_ACCESS_KEY_ID'],
    description: 'static credentials, unused when a profile is set (default: the SDK credential chain)',
    parse: parseString('an access key id'),
  }),
  secretAccessKey: spec({
    env: ['AWS_SECRET_ACCESS_KEY'],
    description: 'static credentials, with AWS_ACCESS_KEY_ID',
    secret: true,
    parse: parseString('a secret access key'),
  }),
  sessionToken: spec({
    env: ['AWS_SESSION_TOKEN'],
    description: 'session token for temporary credentials',
    secret: true,
    parse: parseString('a session token'),
  }),
  maxAttempts: spec({
    env: ['AWS_MAX_ATTEMPTS'],
    description: 'SDK attempts per AWS request, including the first',
    default: 3,
    parse: parseInteger(1, 20),
  }),
};
export type AwsSettingsRaw = Resolved<typeof AWS_OPTIONS>;

export const QUEUE_URL_OPTION = {
  queueUrl: spec({
    flags: '--queue-url <url>',
    env: ['SQS_QUEUE_URL'],
    description: 'URL of the SQS queue',
    required: true,
    parse: parseUrl(['http', 'https']),
  }),
};

const MONGO_URI_EXPECTED =
  'a connection string such as mongodb://user:password@host1:27017,host2:27017/db?replicaSet=rs0 or ' +
  'mongodb+srv://user:password@cluster.example.net/db (percent-encode special characters)';

/** Checks the shape (scheme, user-info, host list) and returns the string as given, trimmed. */
const parseMongoUriSpec: Parser<string> = (raw) => {
  const value = parseString(MONGO_URI_EXPECTED)(raw);
  try {
    parseMongoUri(value);
  } catch (error) {
    if (error instanceof InvalidMongoUri) throw new InvalidValue(`${MONGO_URI_EXPECTED}; ${error.message}`);
    throw error;
  }
  return value;
};

export const MONGO_OPTIONS = {
  mongoUri: spec({
    flags: '--mongo-uri <uri>',
    env: ['MONGODB_URI'],
    description: 'MongoDB connection string; enables the MongoDB store',
    secret: true,
    parse: parseMongoUriSpec,
  }),
  mongoDatabase: spec({
    flags: '--mongo-db <name>',
    env: ['MONGODB_DATABASE'],
    description: 'database name (default: the one in the URI, else aws_msg)',
    parse: parseString('a database name'),
  }),
  mongoCollection: spec({
    flags: '--mongo-collection <name>',
    env: ['MONGODB_COLLECTION'],
    description: 'collection that receives the messages',
    default: 'messages',
    parse: parseString('a collection name'),
  }),
};

export const ARCHIVE_OPTIONS = {
  archiveBucket: spec({
    flags: '--archive-bucket <bucket>',
    env: ['ARCHIVE_BUCKET'],
    description: 'S3 bucket for archived records; enables the archive',
    parse: parseString('a bucket name'),
  }),
  archivePrefix: spec({
    flags: '--archive-prefix <prefix>',
    env: ['ARCHIVE_PREFIX'],
    description: 'key prefix; objects go to <prefix>/YYYY/MM/DD/<key>.json',
    default: 'archive',
    parse: (raw) =>
      String(raw)
        .trim()
        .replace(/^\/+|\/+$/g, ''),
  }),
  archiveWhen: spec({
    flags: '--archive-when <rule>',
    env: ['ARCHIVE_WHEN'],
    description: 'which records to archive, e.g. "type=order,amount>=1000" (default: all)',
    default: '*',
    parse: parseString('a rule such as type=order or priority'),
  }),
};

export const PROCESS_SQS_OPTIONS = {
  ...QUEUE_URL_OPTION,
  dlqUrl: spec({
    flags: '--dlq-url <url>',
    env: ['SQS_DLQ_URL'],
    description: 'queue that receives permanently failing messages with the reason',
    parse: parseUrl(['http', 'https']),
  }),
  waitTimeSeconds: spec({
    flags: '--wait-time-seconds <seconds>',
    env: ['SQS_WAIT_TIME_SECONDS'],
    description: 'long-poll wait per ReceiveMessage',
    defaultLabel: '20, or 1 with --until-empty so that the final empty poll ends quickly',
    parse: parseInteger(0, SQS_MAX_WAIT_TIME_SECONDS),
  }),
  batchSize: spec({
    flags: '--batch-size <n>',
    env: ['SQS_BATCH_SIZE'],
    description: 'messages asked for per ReceiveMessage',
    default: SQS_MAX_BATCH,
    parse: parseInteger(1, SQS_MAX_BATCH),
  }),
  receivers: spec({
    flags: '--receivers <n>',
    env: ['SQS_RECEIVERS'],
    description: 'concurrent ReceiveMessage loops',
    // 8 loops with 400 held measured 0.71x the emulator's floor against 0.53x for 4 and 200 (BENCHMARKS.md).
    default: 8,
    parse: parseInteger(1, 64),
  }),
  maxInFlight: spec({
    flags: '--max-in-flight <n>',
    env: ['SQS_MAX_IN_FLIGHT'],
    description: 'messages held at once (received but not yet acknowledged)',
    default: 400,
    parse: parseInteger(1, 20_000),
  }),
  visibilityTimeoutMs: spec({
    flags: '--visibility-timeout <duration>',
    env: ['SQS_VISIBILITY_TIMEOUT'],
    description: 'visibility timeout asked for on receive, in whole seconds',
    default: 60_000,
    parse: parseDurationMs(1000, MAX_VISIBILITY_MS),
  }),
  heartbeatIntervalMs: spec({
    flags: '--heartbeat-interval <duration>',
    env: ['SQS_HEARTBEAT_INTERVAL'],
    description: 'how often held messages get their visibility extended',
    defaultLabel: 'a third of the visibility timeout',
    parse: parseDurationMs(100, MAX_VISIBILITY_MS),
  }),
  untilEmpty: spec({
    flags: '--until-empty',
    env: ['SQS_UNTIL_EMPTY'],
    description: 'stop once the queue is seen empty (for cron)',
    default: false,
    parse: parseBoolean,
  }),
  maxMessages: spec({
    flags: '--max-messages <n>',
    env: ['SQS_MAX_MESSAGES'],
    description: 'stop after this many messages were received',
    parse: parseInteger(1, Number.MAX_SAFE_INTEGER),
  }),
  maxDurationMs: spec({
    flags: '--max-duration <duration>',
    env: ['SQS_MAX_DURATION'],
    description: 'stop receiving after this long, then finish in-flight work',
    parse: parseDurationMs(1, 1000 * HOUR_MS),
  }),
  shutdownTimeoutMs: spec({
    flags: '--shutdown-timeout <duration>',
    env: ['SQS_SHUTDOWN_TIMEOUT'],
    description: 'on a signal or limit, how long in-flight work may take to finish',
    default: 30_000,
    parse: parseDurationMs(0, HOUR_MS),
  }),
  retryBackoffMs: spec({
    flags: '--retry-backoff <duration>',
    env: ['SQS_RETRY_BACKOFF'],
    description: 'visibility delay after a first transient failure; doubles per receive',
    default: 10_000,
    parse: parseDurationMs(0, MAX_VISIBILITY_MS),
  }),
  retryBackoffMaxMs: spec({
    flags: '--retry-backoff-max <duration>',
    env: ['SQS_RETRY_BACKOFF_MAX'],
    description: 'upper bound of the transient-failure backoff',
    default: 15 * 60_000,
    parse: parseDurationMs(0, MAX_VISIBILITY_MS),
  }),
  poisonBackoffMs: spec({
    flags: '--poison-backoff <duration>',
    env: ['SQS_POISON_BACKOFF'],
    description: 'without --dlq-url, visibility delay for an invalid message until redrive moves it',
    default: HOUR_MS,
    parse: parseDurationMs(0, MAX_VISIBILITY_MS),
  }),
  schemaFile: spec({
    flags: '--schema <file>',
    env: ['MESSAGE_SCHEMA'],
    description: 'JSON Schema (draft-07) every message body must match',
    defaultLabel: 'schemas/message.schema.json (bundled)',
    parse: parseString('a file path'),
  }),
  idField: spec({
    flags: '--id-field <path>',
    env: ['MESSAGE_ID_FIELD'],
    description: 'body field (dot path) used as the message key (default: the SQS MessageId)',
    parse: parseString('a field name or dot path such as order.id'),
  }),
  storeBatchSize: spec({
    flags: '--store-batch-size <n>',
    env: ['STORE_BATCH_SIZE'],
    description: 'messages coalesced into one store write',
    default: 100,
    parse: parseInteger(1, 1000),
  }),
  storeBatchWaitMs: spec({
    flags: '--store-batch-wait <duration>',
    env: ['STORE_BATCH_WAIT'],
    description: 'how long a partial store batch may wait for more messages',
    default: 20,
    parse: parseDurationMs(0, 10_000),
  }),
  json: spec({
    flags: '--json',
    description: 'print the run summary as one JSON object on stdout',
    default: false,
    parse: parseBoolean,
  }),
};
export type ProcessSqsOptions = Resolved<typeof PROCESS_SQS_OPTIONS>;

export const SEND_MESSAGES_OPTIONS = {
  ...QUEUE_URL_OPTION,
  file: spec({
    flags: '--file <path>',
    description: 'JSON file holding an array of message bodies',
    required: true,
    parse: parseString('a file path'),
  }),
  concurrency: spec({
    flags: '--concurrency <n>',
    env: ['SEND_CONCURRENCY'],
    description: 'SendMessageBatch calls in flight at once',
    default: 8,
    parse: parseInteger(1, 256),
  }),
  groupId: spec({
    flags: '--group-id <id>',
    env: ['SEND_GROUP_ID'],
    description: 'FIFO MessageGroupId for every message (or use --group-id-field)',
    parse: parseString('a message group id'),
  }),
  groupIdField: spec({
    flags: '--group-id-field <path>',
    env: ['SEND_GROUP_ID_FIELD'],
    description: 'body field (dot path) holding the FIFO MessageGroupId',
    parse: parseString('a field name or dot path'),
  }),
  dedupIdField: spec({
    flags: '--dedup-id-field <path>',
    env: ['SEND_DEDUP_ID_FIELD'],
    description: 'body field holding the FIFO deduplication id (default: SHA-256 of the body)',
    parse: parseString('a field name or dot path'),
  }),
  maxInputBytes: spec({
    flags: '--max-input-bytes <size>',
    env: ['MAX_INPUT_BYTES'],
    description: 'refuse input files larger than this',
    default: 64 * 1024 * 1024,
    parse: parseBytes(2),
  }),
  json: spec({
    flags: '--json',
    description: 'print the summary as one JSON object on stdout',
    default: false,
    parse: parseBoolean,
  }),
};
export type SendMessagesOptions = Resolved<typeof SEND_MESSAGES_OPTIONS>;
