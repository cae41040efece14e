/**
 * The Lambda driver's settings. A function has no flags and no .env file: everything comes from
 * its environment, under the same variable names as `process-sqs` (`MONGODB_URI`, `SQS_DLQ_URL`,
 * `MESSAGE_SCHEMA`, `ARCHIVE_*`, `MSSQL_*`...), resolved by the same specs and resolvers, plus the
 * few settings only a Lambda has (`LAMBDA_*`). Every problem is one line naming the variable.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../utils/errors.js';
import type { LogFormat, LogLevel } from '../utils/logger.js';
import {
  DEFAULT_MESSAGE_SCHEMA,
  resolveAwsSettings,
  resolveOptions,
  resolveStoreSettings,
  type AwsSettings,
  type ConfigSources,
  type Env,
  type StoreSettings,
} from './config-loader.js';
import {
  InvalidValue,
  parseBoolean,
  parseDurationMs,
  parseUrl,
  spec,
  type RawValue,
  type Resolved,
} from './options.js';
import { GLOBAL_OPTIONS, PROCESS_SQS_OPTIONS } from './settings.js';

/** `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`. */
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$/;

function parseSecretArn(raw: RawValue): string {
  const value = typeof raw === 'string' ? raw.trim() : '';
  if (!SECRET_ARN.test(value)) {
    throw new InvalidValue(
      'a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)',
    );
  }
  return value;
}

/** The store settings a secret can hold, and the variable its value stands for. */
export const SECRET_BACKED = {
  mongoUri: { arnEnv: 'MONGODB_URI_SECRET_ARN', valueEnv: 'MONGODB_URI' },
  mssqlUrl: { arnEnv: 'MSSQL_URL_SECRET_ARN', valueEnv: 'MSSQL_URL' },
} as const;
export type SecretBacked = keyof typeof SECRET_BACKED;

/**
 * Stand-ins used only to check the other store settings before the secrets are read; their result
 * is thrown away. Their passwords are under 4 characters, which are never registered for redaction.
 */
const PLACEHOLDERS: Record<SecretBacked, string> = {
  mongoUri: 'mongodb://secret.invalid/',
  mssqlUrl: 'Server=secret.invalid;Database=secret;User Id=secret;Password=x',
};

/** Lambda's own limit on a function's timeout. */
const LAMBDA_MAX_TIMEOUT_MS = 15 * 60_000;

export const LAMBDA_OPTIONS = {
  logLevel: GLOBAL_OPTIONS.logLevel,
  logFormat: spec<LogFormat>({ ...GLOBAL_OPTIONS.logFormat, default: 'json', defaultLabel: 'json' }),
  queueUrl: spec({
    env: ['SQS_QUEUE_URL'],
    description:
      'URL of the queue the function consumes, for visibility changes; set it only when the function has one event source',
    defaultLabel: "derived from each record's eventSourceARN (and AWS_ENDPOINT_URL_SQS)",
    parse: parseUrl(['http', 'https']),
  }),
  dlqUrl: PROCESS_SQS_OPTIONS.dlqUrl,
  retryBackoffMs: PROCESS_SQS_OPTIONS.retryBackoffMs,
  retryBackoffMaxMs: PROCESS_SQS_OPTIONS.retryBackoffMaxMs,
  poisonBackoffMs: PROCESS_SQS_OPTIONS.poisonBackoffMs,
  schemaFile: PROCESS_SQS_OPTIONS.schemaFile,
  idField: PROCESS_SQS_OPTIONS.idField,
  storeBatchSize: PROCESS_SQS_OPTIONS.storeBatchSize,
  timeoutMarginMs: spec({
    env: ['LAMBDA_TIMEOUT_MARGIN'],
    description:
      'time kept back at the end of an invocation: no store batch starts, and one still running (or the ' +
      'first connection to the stores) is given up, once less than this remains; what was not stored is reported as failed',
    default: 5000,
    parse: parseDurationMs(0, LAMBDA_MAX_TIMEOUT_MS),
  }),
  visibilityBackoff: spec({
    env: ['LAMBDA_VISIBILITY_BACKOFF'],
    description:
      'give failed messages the same visibility backoff as process-sqs (ChangeMessageVisibility); ' +
      "false leaves them to the queue's visibility timeout",
    default: true,
    parse: parseBoolean,
  }),
};
export type LambdaOptions = Resolved<typeof LAMBDA_OPTIONS>;

/**
 * Secrets the function reads itself on a cold start, so that their values are never in its
 * configuration. Kept apart from LAMBDA_OPTIONS: these have no place in a CLI's .env file.
 */
export const LAMBDA_SECRET_OPTIONS = {
  mongoUriSecretArn: spec({
    env: ['MONGODB_URI_SECRET_ARN'],
    description:
      'ARN of a Secrets Manager secret whose SecretString is the MongoDB URI, read on the first invocation ' +
      'instead of MONGODB_URI (so the URI is not in the function configuration)',
    parse: parseSecretArn,
  }),
  mssqlUrlSecretArn: spec({
    env: ['MSSQL_URL_SECRET_ARN'],
    description:
      'ARN of a Secrets Manager secret whose SecretString is the SQL Server connection string, read on the ' +
      'first invocation instead of MSSQL_URL',
    parse: parseSecretArn,
  }),
  secretsEndpoint: spec({
    env: ['AWS_ENDPOINT_URL_SECRETS_MANAGER', 'AWS_ENDPOINT_URL'],
    description: 'Secrets Manager endpoint (an emulator)',
    parse: parseUrl(['http', 'https']),
  }),
};

export interface LambdaSettings extends StoreSettings {
  aws: AwsSettings;
  /** LOG_LEVEL. Default `info`. */
  logLevel: LogLevel;
  /** LOG_FORMAT. Default `json`: one CloudWatch event per line. */
  logFormat: LogFormat;
  /** SQS_QUEUE_URL: overrides the queue URL derived from each record's event source ARN. Default: derived. */
  queueUrl?: string;
  /** SQS_DLQ_URL: where permanent failures go. Default: none, so the queue's redrive policy moves them. */
  dlqUrl?: string;
  /** SQS_RETRY_BACKOFF. Default 10 s. */
  retryBackoffMs: number;
  /** SQS_RETRY_BACKOFF_MAX. Default 15 min. */
  retryBackoffMaxMs: number;
  /** SQS_POISON_BACKOFF. Default 1 h. */
  poisonBackoffMs: number;
  /** MESSAGE_SCHEMA, as an absolute path. Default: the bundled `schemas/message.schema.json`. */
  schemaFile: string;
  /** MESSAGE_ID_FIELD. Default: the SQS MessageId is the key. */
  idField?: string;
  /** STORE_BATCH_SIZE: records handed to the stores at once; the time budget is checked between chunks. Default 100. */
  chunkSize: number;
  /** LAMBDA_TIMEOUT_MARGIN: also bounds the opening of the stores on a cold start. Default 5 s. */
  timeoutMarginMs: number;
  /** LAMBDA_VISIBILITY_BACKOFF. Default true. */
  visibilityBackoff: boolean;
  /**
   * MONGODB_URI_SECRET_ARN / MSSQL_URL_SECRET_ARN: secrets still to read. While set, the store they
   * stand for is absent from these settings; `withSecretValues` resolves it from the values.
   */
  secretArns?: Partial<Record<SecretBacked, string>>;
  /** AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL. */
  secretsEndpoint?: string;
}

/**
 * The bundled default schema. In the Lambda bundle it sits in `schemas/` beside `index.mjs`;
 * from the sources it is the package's own. (`DEFAULT_MESSAGE_SCHEMA` is resolved two levels above
 * the module, which is right for `dist/config/` but not for a single-file bundle.)
 */
export function defaultLambdaSchema(moduleUrl: string = import.meta.url): string {
  const besideBundle = join(dirname(fileURLToPath(moduleUrl)), 'schemas', 'message.schema.json');
  return existsSync(besideBundle) ? besideBundle : DEFAULT_MESSAGE_SCHEMA;
}

/**
 * Resolves the function's settings from its environment. Relative paths (`MESSAGE_SCHEMA`) are
 * taken from `LAMBDA_TASK_ROOT`, where Lambda unpacks the zip, else from the working directory.
 * Throws a ConfigError listing every problem, one line each.
 */
export function loadLambdaSettings(env: Env, cwd: string = process.cwd()): LambdaSettings {
  const sources: ConfigSources = { flags: {}, env, dotenv: {} };
  const problems: string[] = [];
  const aws = resolveAwsSettings(sources, problems);
  const o = {
    ...resolveOptions(LAMBDA_OPTIONS, sources, problems),
    ...resolveOptions(LAMBDA_SECRET_OPTIONS, sources, problems),
  };
  const secretArns: Partial<Record<SecretBacked, string>> = {};
  if (o.mongoUriSecretArn !== undefined) secretArns.mongoUri = o.mongoUriSecretArn;
  if (o.mssqlUrlSecretArn !== undefined) secretArns.mssqlUrl = o.mssqlUrlSecretArn;
  for (const key of Object.keys(secretArns) as SecretBacked[]) {
    const { arnEnv, valueEnv } = SECRET_BACKED[key];
    if ((env[valueEnv] ?? '') !== '') problems.push(`${arnEnv}: set it or ${valueEnv}, not both`);
  }
  const hasSecrets = Object.keys(secretArns).length > 0;
  // With secrets, the other store settings are checked now over stand-ins, and resolved once read.
  const stores = hasSecrets
    ? (resolveStoreSettings({ ...sources, env: withValues(env, placeholdersFor(secretArns)) }, problems), {})
    : resolveStoreSettings(sources, problems);
  if (o.retryBackoffMaxMs < o.retryBackoffMs) {
    problems.push(
      `SQS_RETRY_BACKOFF_MAX: got ${o.retryBackoffMaxMs}ms, expected at least SQS_RETRY_BACKOFF (${o.retryBackoffMs}ms)`,
    );
  }
  if (o.dlqUrl !== undefined && o.dlqUrl === o.queueUrl) {
    problems.push('SQS_DLQ_URL: must differ from SQS_QUEUE_URL');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const root = env['LAMBDA_TASK_ROOT'] || cwd;
  const settings: LambdaSettings = {
    ...stores,
    aws,
    logLevel: o.logLevel,
    logFormat: o.logFormat,
    retryBackoffMs: o.retryBackoffMs,
    retryBackoffMaxMs: o.retryBackoffMaxMs,
    poisonBackoffMs: o.poisonBackoffMs,
    schemaFile: o.schemaFile === undefined ? defaultLambdaSchema() : resolve(root, o.schemaFile),
    chunkSize: o.storeBatchSize,
    timeoutMarginMs: o.timeoutMarginMs,
    visibilityBackoff: o.visibilityBackoff,
  };
  if (o.queueUrl !== undefined) settings.queueUrl = o.queueUrl;
  if (o.dlqUrl !== undefined) settings.dlqUrl = o.dlqUrl;
  if (o.idField !== undefined) settings.idField = o.idField;
  if (hasSecrets) settings.secretArns = secretArns;
  if (o.secretsEndpoint !== undefined) settings.secretsEndpoint = o.secretsEndpoint;
  return settings;
}

function placeholdersFor(arns: Partial<Record<SecretBacked, string>>): Partial<Record<SecretBacked, string>> {
  const out: Partial<Record<SecretBacked, string>> = {};
  for (const key of Object.keys(arns) as SecretBacked[]) out[key] = PLACEHOLDERS[key];
  return out;
}

function withValues(env: Env, values: Partial<Record<SecretBacked, string>>): Env {
  const out: Env = { ...env };
  for (const [key, value] of Object.entries(values) as Array<[SecretBacked, string]>) {
    out[SECRET_BACKED[key].valueEnv] = value;
  }
  return out;
}

/**
 * The settings once the secrets are read: the stores resolved from the environment with each
 * secret's value in place of its variable (registered for redaction like any secret setting).
 * Throws a ConfigError whose problems name the secret's variable, never quoting its value.
 */
export function withSecretValues(
  settings: LambdaSettings,
  env: Env,
  values: Partial<Record<SecretBacked, string>>,
): LambdaSettings {
  const problems: string[] = [];
  const stores = resolveStoreSettings({ flags: {}, env: withValues(env, values), dotenv: {} }, problems);
  if (problems.length > 0) {
    throw new ConfigError(
      problems.map((problem) => {
        let line = problem;
        for (const key of Object.keys(values) as SecretBacked[]) {
          const { arnEnv, valueEnv } = SECRET_BACKED[key];
          line = line.replaceAll(valueEnv, `${valueEnv} (the secret in ${arnEnv})`);
        }
        return line;
      }),
    );
  }
  const { secretArns: _read, mongo: _m, mssql: _s, archive: _a, ...rest } = settings;
  return { ...rest, ...stores };
}
