/**
 * The only module that reads process.env, .env files and command-line flags.
 * Precedence: flag > environment > .env > default. Every problem becomes one line that names
 * the flag or variable, the bad value (unless secret) and what is expected; all problems of a
 * run are reported together and the process exits with code 2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseDotenv } from 'dotenv';
import { ConfigError } from '../utils/errors.js';
import { SQS_MAX_WAIT_TIME_SECONDS } from './constants.js';
import { registerSecret } from '../utils/logger.js';
import { InvalidValue, type RawValue, type Resolved, type Spec, type SpecTable } from './options.js';
import {
  ARCHIVE_OPTIONS,
  AWS_OPTIONS,
  GLOBAL_OPTIONS,
  MONGO_OPTIONS,
  PROCESS_SQS_OPTIONS,
  SEND_MESSAGES_OPTIONS,
  type GlobalSettings,
  type SendMessagesOptions,
} from './settings.js';
import { parseArchiveRule, type ArchiveRule } from '../services/archive-rule.js';
import { MSSQL_OPTIONS, resolveMssqlSettings, type MssqlSettings } from './mssql-settings.js';
import { parseMongoUri, type MongoUriParts } from './mongo-uri.js';

export type Flags = Record<string, RawValue | undefined>;
export type Env = Record<string, string | undefined>;

export interface ConfigSources {
  /** Values commander parsed, keyed by the spec key. Absent when the flag was not given. */
  flags: Flags;
  /** The process environment. */
  env: Env;
  /** Variables from the .env file (already parsed). */
  dotenv: Record<string, string>;
  /** Where `dotenv` came from, for messages. */
  dotenvPath?: string;
}

/** The package root, where `schemas/` and `create_messages_table.sql` live (one level above src/ or dist/). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Splits a flag spec such as `--queue-url <url>` into its long name. */
export function flagName(flags: string): string {
  const long = flags.split(/[\s,|]+/).find((part) => part.startsWith('--'));
  return long ?? flags;
}

/**
 * Registers a secret setting's value for redaction. For a connection string that is its password
 * (as decoded and as written), which is what drivers and stack traces quote; otherwise the value.
 */
function registerSecretValue(value: unknown): void {
  if (typeof value !== 'string') return;
  let uri: MongoUriParts;
  try {
    uri = parseMongoUri(value);
  } catch {
    // not a connection string: the whole value is the secret
    registerSecret(value);
    return;
  }
  registerSecret(uri.password);
  registerSecret(uri.passwordAsWritten);
}

/** Human name of the setting for "required" messages: `--queue-url (or SQS_QUEUE_URL)`. */
function settingName(s: Spec<unknown>): string {
  const names = [s.flags ? flagName(s.flags) : undefined, ...(s.env ?? [])].filter(Boolean);
  if (names.length <= 1) return names[0] ?? '?';
  return `${names[0]} (or ${names.slice(1).join(', ')})`;
}

/**
 * Resolves one table of specs. Problems are appended to `problems` rather than thrown, so that a
 * run reports every bad setting at once.
 */
export function resolveOptions<S extends SpecTable>(
  table: S,
  sources: ConfigSources,
  problems: string[],
): Resolved<S> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(table)) {
    let raw: RawValue | undefined;
    let where: string | undefined;
    const flagValue = sources.flags[key];
    if (flagValue !== undefined && s.flags) {
      raw = flagValue;
      where = flagName(s.flags);
    } else {
      // Every environment name before any .env name: AWS_DEFAULT_REGION in the environment beats
      // AWS_REGION in .env, as the environment beats .env for every setting.
      const name = (s.env ?? []).find((n) => (sources.env[n] ?? '') !== '');
      const fileName = (s.env ?? []).find((n) => (sources.dotenv[n] ?? '') !== '');
      if (name !== undefined) {
        raw = sources.env[name];
        where = name;
      } else if (fileName !== undefined) {
        raw = sources.dotenv[fileName];
        where = `${fileName} (in ${sources.dotenvPath ?? '.env'})`;
      }
    }
    if (raw === undefined) {
      if (s.default !== undefined) {
        out[key] = typeof s.default === 'function' ? (s.default as () => unknown)() : s.default;
      } else if (s.required) {
        problems.push(`${settingName(s)} is required: ${s.description}`);
      }
      continue;
    }
    try {
      const value = s.parse(raw);
      if (s.secret) registerSecretValue(value);
      out[key] = value;
    } catch (error) {
      if (!(error instanceof InvalidValue)) throw error;
      const got = s.secret ? 'an invalid value' : `"${String(raw)}"`;
      problems.push(`${where}: got ${got}, expected ${error.expected}`);
    }
  }
  return out as Resolved<S>;
}

/** Whether any source sets the setting, valid or not. */
function isGiven(s: Spec<unknown>, key: string, sources: ConfigSources): boolean {
  if (s.flags !== undefined && sources.flags[key] !== undefined) return true;
  return (s.env ?? []).some((n) => (sources.env[n] ?? '') !== '' || (sources.dotenv[n] ?? '') !== '');
}

function throwIfProblems(problems: string[]): void {
  if (problems.length > 0) throw new ConfigError(problems);
}

/**
 * Resolves the global options and reads the .env file they point at. The result carries the
 * sources every command then resolves its own options from.
 */
export function loadGlobalConfig(
  globalFlags: Flags,
  env: Env = process.env,
  cwd: string = process.cwd(),
): { global: GlobalSettings; sources: ConfigSources } {
  const problems: string[] = [];
  const bootstrap: ConfigSources = { flags: globalFlags, env, dotenv: {} };
  const global = resolveOptions(GLOBAL_OPTIONS, bootstrap, problems);
  throwIfProblems(problems);

  const explicit = globalFlags['envFile'] !== undefined || (env['AWS_MSG_ENV_FILE'] ?? '') !== '';
  const path = resolve(cwd, global.envFile);
  let dotenv: Record<string, string> = {};
  if (existsSync(path)) {
    try {
      dotenv = parseDotenv(readFileSync(path));
    } catch (error) {
      throw new ConfigError([`--env-file: cannot read ${global.envFile}: ${(error as Error).message}`]);
    }
  } else if (explicit) {
    throw new ConfigError([`--env-file: got "${global.envFile}", expected an existing dotenv file`]);
  }
  const sources: ConfigSources = { flags: globalFlags, env, dotenv, dotenvPath: global.envFile };
  // Settings of global options may also come from .env (LOG_LEVEL=debug in .env must work).
  const withFile = resolveOptions(GLOBAL_OPTIONS, sources, problems);
  throwIfProblems(problems);
  return { global: withFile, sources };
}

/** Returns sources whose flags are the command's own, keeping environment and .env. */
export function withFlags(sources: ConfigSources, flags: Flags): ConfigSources {
  return { ...sources, flags };
}

// ---------------------------------------------------------------------------------------------
// AWS
// ---------------------------------------------------------------------------------------------

/** Everything needed to build SDK clients, following the SDK's own conventions. */
export interface AwsSettings {
  /** Undefined: the SDK resolves it (AWS_REGION, ~/.aws/config). */
  region?: string;
  profile?: string;
  /** Static credentials; undefined means the SDK's default credential chain. Never set with `profile`. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** SDK attempts per request, including the first. */
  maxAttempts: number;
  sqsEndpoint?: string;
  s3Endpoint?: string;
  s3ForcePathStyle: boolean;
}

export function resolveAwsSettings(sources: ConfigSources, problems: string[]): AwsSettings {
  const raw = resolveOptions(AWS_OPTIONS, sources, problems);
  const settings: AwsSettings = { maxAttempts: raw.maxAttempts, s3ForcePathStyle: false };
  if (raw.region !== undefined) settings.region = raw.region;
  if (raw.profile !== undefined) settings.profile = raw.profile;
  // The flag is the most specific thing the user said; AWS_ENDPOINT_URL_SQS/_S3 beat only AWS_ENDPOINT_URL.
  const endpointFlag = sources.flags['endpointUrl'] !== undefined;
  const sqsEndpoint = endpointFlag ? raw.endpointUrl : (raw.sqsEndpointUrl ?? raw.endpointUrl);
  const s3Endpoint = endpointFlag ? raw.endpointUrl : (raw.s3EndpointUrl ?? raw.endpointUrl);
  if (sqsEndpoint !== undefined) settings.sqsEndpoint = sqsEndpoint;
  if (s3Endpoint !== undefined) settings.s3Endpoint = s3Endpoint;
  settings.s3ForcePathStyle = raw.s3ForcePathStyle ?? s3Endpoint !== undefined;
  if (raw.accessKeyId !== undefined || raw.secretAccessKey !== undefined) {
    if (raw.accessKeyId === undefined || raw.secretAccessKey === undefined) {
      problems.push('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither');
    } else if (raw.profile === undefined) {
      // A named profile wins over static keys, as in the SDK's own chain (which skips its
      // environment provider when a profile is set): the keys are not passed then.
      settings.credentials = { accessKeyId: raw.accessKeyId, secretAccessKey: raw.secretAccessKey };
      if (raw.sessionToken !== undefined) settings.credentials.sessionToken = raw.sessionToken;
    }
  }
  return settings;
}

// ---------------------------------------------------------------------------------------------
// process-sqs
// ---------------------------------------------------------------------------------------------

export interface MongoSettings {
  uri: string;
  database: string;
  collection: string;
}

export interface ArchiveSettings {
  bucket: string;
  prefix: string;
  rule: ArchiveRule;
}

export interface ProcessSqsSettings extends StoreSettings {
  aws: AwsSettings;
  queueUrl: string;
  dlqUrl?: string;
  waitTimeSeconds: number;
  batchSize: number;
  receivers: number;
  maxInFlight: number;
  visibilityTimeoutSeconds: number;
  heartbeatIntervalMs: number;
  untilEmpty: boolean;
  maxMessages?: number;
  maxDurationMs?: number;
  shutdownTimeoutMs: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  poisonBackoffMs: number;
  /** Absolute path of the JSON Schema for message bodies. */
  schemaFile: string;
  idField?: string;
  storeBatchSize: number;
  storeBatchWaitMs: number;
  json: boolean;
}

/** The stores a run writes to; at least one is set. */
export interface StoreSettings {
  mongo?: MongoSettings;
  mssql?: MssqlSettings;
  archive?: ArchiveSettings;
}

export const DEFAULT_MESSAGE_SCHEMA = resolve(PACKAGE_ROOT, 'schemas', 'message.schema.json');

/** The database named in a MongoDB URI's path, if any. */
export function databaseFromMongoUri(uri: string): string | undefined {
  try {
    return parseMongoUri(uri).database;
  } catch {
    return undefined;
  }
}

/** The MongoDB store, when `--mongo-uri` (MONGODB_URI) is set. */
export function resolveMongoSettings(sources: ConfigSources, problems: string[]): MongoSettings | undefined {
  const o = resolveOptions(MONGO_OPTIONS, sources, problems);
  if (o.mongoUri === undefined) return undefined;
  return {
    uri: o.mongoUri,
    database: o.mongoDatabase ?? databaseFromMongoUri(o.mongoUri) ?? 'aws_msg',
    collection: o.mongoCollection,
  };
}

function archiveFromOptions(
  o: Resolved<typeof ARCHIVE_OPTIONS>,
  problems: string[],
): ArchiveSettings | undefined {
  let rule: ArchiveRule | undefined;
  try {
    rule = parseArchiveRule(o.archiveWhen);
  } catch (error) {
    problems.push(`--archive-when: got "${o.archiveWhen}", ${(error as Error).message}`);
  }
  if (o.archiveBucket === undefined || rule === undefined) return undefined;
  return { bucket: o.archiveBucket, prefix: o.archivePrefix, rule };
}

/** The S3 archive, when `--archive-bucket` is set; the rule is checked even without a bucket. */
export function resolveArchiveSettings(
  sources: ConfigSources,
  problems: string[],
): ArchiveSettings | undefined {
  return archiveFromOptions(resolveOptions(ARCHIVE_OPTIONS, sources, problems), problems);
}

/** Every configured store. At least one is required; the problem says how to configure one. */
export function resolveStoreSettings(sources: ConfigSources, problems: string[]): StoreSettings {
  const stores: StoreSettings = {};
  const mongo = resolveMongoSettings(sources, problems);
  const mssql = resolveMssqlSettings(sources, problems);
  const archiveOptions = resolveOptions(ARCHIVE_OPTIONS, sources, problems);
  const archive = archiveFromOptions(archiveOptions, problems);
  // A store whose setting is given but invalid has its own problem line; "none configured" would mislead.
  const given =
    isGiven(MONGO_OPTIONS.mongoUri, 'mongoUri', sources) ||
    isGiven(MSSQL_OPTIONS.mssqlUrl, 'mssqlUrl', sources) ||
    isGiven(MSSQL_OPTIONS.mssqlHost, 'mssqlHost', sources);
  if (!given && mongo === undefined && mssql === undefined && archiveOptions.archiveBucket === undefined) {
    problems.push(
      'no store configured: set --mongo-uri (MONGODB_URI), --mssql-url (MSSQL_URL or MSSQL_HOST) and/or --archive-bucket (ARCHIVE_BUCKET)',
    );
  }
  if (mongo !== undefined) stores.mongo = mongo;
  if (mssql !== undefined) stores.mssql = mssql;
  if (archive !== undefined) stores.archive = archive;
  return stores;
}

export function loadProcessSqsSettings(
  sources: ConfigSources,
  cwd: string = process.cwd(),
): ProcessSqsSettings {
  const problems: string[] = [];
  const aws = resolveAwsSettings(sources, problems);
  const o = resolveOptions(PROCESS_SQS_OPTIONS, sources, problems);
  const stores = resolveStoreSettings(sources, problems);

  if (o.visibilityTimeoutMs % 1000 !== 0) {
    problems.push(
      `--visibility-timeout: got ${o.visibilityTimeoutMs}ms, expected whole seconds (SQS granularity)`,
    );
  }
  const heartbeatIntervalMs = o.heartbeatIntervalMs ?? Math.max(250, Math.floor(o.visibilityTimeoutMs / 3));
  // At most half: a message is extended when its visibility ends within 1.5 beats, so a beat that
  // runs late (a busy event loop, a slow request) still lands before the message reappears.
  if (heartbeatIntervalMs > o.visibilityTimeoutMs / 2) {
    problems.push(
      `--heartbeat-interval: got ${heartbeatIntervalMs}ms, expected at most half of --visibility-timeout (${Math.floor(o.visibilityTimeoutMs / 2)}ms)`,
    );
  }
  if (o.retryBackoffMaxMs < o.retryBackoffMs) {
    problems.push(
      `--retry-backoff-max: got ${o.retryBackoffMaxMs}ms, expected at least --retry-backoff (${o.retryBackoffMs}ms)`,
    );
  }
  if (o.dlqUrl !== undefined && o.dlqUrl === o.queueUrl) {
    problems.push('--dlq-url: must differ from --queue-url');
  }
  throwIfProblems(problems);

  const settings: ProcessSqsSettings = {
    aws,
    queueUrl: o.queueUrl,
    waitTimeSeconds: o.waitTimeSeconds ?? (o.untilEmpty ? 1 : SQS_MAX_WAIT_TIME_SECONDS),
    batchSize: o.batchSize,
    receivers: o.receivers,
    maxInFlight: o.maxInFlight,
    visibilityTimeoutSeconds: o.visibilityTimeoutMs / 1000,
    heartbeatIntervalMs,
    untilEmpty: o.untilEmpty,
    shutdownTimeoutMs: o.shutdownTimeoutMs,
    retryBackoffMs: o.retryBackoffMs,
    retryBackoffMaxMs: o.retryBackoffMaxMs,
    poisonBackoffMs: o.poisonBackoffMs,
    schemaFile: o.schemaFile === undefined ? DEFAULT_MESSAGE_SCHEMA : resolve(cwd, o.schemaFile),
    storeBatchSize: o.storeBatchSize,
    storeBatchWaitMs: o.storeBatchWaitMs,
    json: o.json,
  };
  if (o.dlqUrl !== undefined) settings.dlqUrl = o.dlqUrl;
  if (o.maxMessages !== undefined) settings.maxMessages = o.maxMessages;
  if (o.maxDurationMs !== undefined) settings.maxDurationMs = o.maxDurationMs;
  if (o.idField !== undefined) settings.idField = o.idField;
  return { ...settings, ...stores };
}

// ---------------------------------------------------------------------------------------------
// send-messages
// ---------------------------------------------------------------------------------------------

export interface SendMessagesSettings extends SendMessagesOptions {
  aws: AwsSettings;
  file: string;
}

export function loadSendMessagesSettings(
  sources: ConfigSources,
  cwd: string = process.cwd(),
): SendMessagesSettings {
  const problems: string[] = [];
  const aws = resolveAwsSettings(sources, problems);
  const o = resolveOptions(SEND_MESSAGES_OPTIONS, sources, problems);
  if (o.groupId !== undefined && o.groupIdField !== undefined) {
    problems.push('--group-id and --group-id-field: give one or the other');
  }
  throwIfProblems(problems);
  return { ...o, aws, file: resolve(cwd, o.file) };
}
