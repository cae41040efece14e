/**
 * Settings of `download-urls`: the option table (flag, variable, default, parser) and the loader
 * that resolves it with the shared precedence (flag > environment > .env > default), then checks
 * the rules that span several settings. Every problem is one line naming the flag or variable.
 */
import { resolve } from 'node:path';
import { ConfigError } from '../utils/errors.js';
import { resolveAwsSettings, resolveOptions, type AwsSettings, type ConfigSources } from './config-loader.js';
import { DEFAULT_MAX_INPUT_FILE_BYTES } from './constants.js';
import {
  InvalidValue,
  parseBoolean,
  parseBytes,
  parseDurationMs,
  parseEnum,
  parseInteger,
  parseString,
  spec,
  type Parser,
  type Resolved,
  type Spec,
} from './options.js';

const HOUR_MS = 3_600_000;

/** Downloads in flight at once, across all hosts. */
export const DEFAULT_CONCURRENCY = 16;
/** Downloads in flight at once against one host; browsers use the same figure. */
export const DEFAULT_PER_HOST = 6;

/** Where downloads go: a local directory, or an S3 bucket and key prefix. */
export type DownloadTarget =
  | { kind: 'disk'; /** Absolute path. */ dir: string }
  | { kind: 's3'; bucket: string; /** Without leading or trailing slashes; may be empty. */ prefix: string };

/** What to do when the destination already holds a file of the same name. */
export type ExistingMode = 'skip' | 'overwrite' | 'if-changed';

export const HASH_MODES = ['all', 'expected'] as const;
/** Which files get a SHA-256: every one, or only those whose entry gives one to verify. */
export type HashMode = (typeof HASH_MODES)[number];

// Bucket naming rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses `s3://bucket/optional/prefix`. */
export const parseS3Target: Parser<{ bucket: string; prefix: string }> = (raw) => {
  const expected = 'an S3 URL such as s3://bucket or s3://bucket/prefix';
  if (typeof raw !== 'string') throw new InvalidValue(expected);
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(raw.trim());
  if (!match) throw new InvalidValue(expected);
  const bucket = match[1] ?? '';
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw new InvalidValue(`${expected} (bucket names are 3-63 lowercase letters, digits, dots and hyphens)`);
  }
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new InvalidValue(`${expected} without "." or ".." in the prefix`);
  }
  return { bucket, prefix };
};

export const DOWNLOAD_URLS_OPTIONS = {
  file: spec({
    flags: '--file <path>',
    env: ['DOWNLOAD_FILE'],
    description: 'JSON file listing the URLs (see schemas/urls.schema.json)',
    required: true,
    parse: parseString('a file path'),
  }),
  out: spec({
    flags: '--out <dir>',
    env: ['DOWNLOAD_OUT'],
    description: 'directory the files are written to (created if missing)',
    defaultLabel: 'downloads',
    parse: parseString('a directory path'),
  }),
  to: spec({
    flags: '--to <s3-url>',
    env: ['DOWNLOAD_TO'],
    description: 'stream every file into S3 instead, e.g. s3://bucket/prefix',
    parse: parseS3Target,
  }),
  concurrency: spec({
    flags: '--concurrency <n>',
    env: ['DOWNLOAD_CONCURRENCY'],
    description: 'downloads in flight at once, across all hosts',
    default: DEFAULT_CONCURRENCY,
    parse: parseInteger(1, 1024),
  }),
  perHost: spec({
    flags: '--per-host <n>',
    env: ['DOWNLOAD_PER_HOST'],
    description: 'downloads in flight at once against one host (also its connection cap)',
    defaultLabel: `${DEFAULT_PER_HOST}, or --concurrency when that is lower`,
    parse: parseInteger(1, 1024),
  }),
  retries: spec({
    flags: '--retries <n>',
    env: ['DOWNLOAD_RETRIES'],
    description: 'retries after a failed attempt (network error, timeout, 408, 429, 5xx)',
    default: 3,
    parse: parseInteger(0, 100),
  }),
  retryDelayMs: spec({
    flags: '--retry-delay <duration>',
    env: ['DOWNLOAD_RETRY_DELAY'],
    description: 'first backoff delay; doubles per retry, with jitter',
    default: 1000,
    parse: parseDurationMs(0, HOUR_MS),
  }),
  maxRetryWaitMs: spec({
    flags: '--max-retry-wait <duration>',
    env: ['DOWNLOAD_MAX_RETRY_WAIT'],
    description: 'longest wait before a retry, including a server Retry-After',
    default: 30_000,
    parse: parseDurationMs(0, HOUR_MS),
  }),
  connectTimeoutMs: spec({
    flags: '--connect-timeout <duration>',
    env: ['DOWNLOAD_CONNECT_TIMEOUT'],
    description: 'time allowed to open a connection (TCP and TLS)',
    default: 10_000,
    parse: parseDurationMs(1, 10 * 60_000),
  }),
  headersTimeoutMs: spec({
    flags: '--headers-timeout <duration>',
    env: ['DOWNLOAD_HEADERS_TIMEOUT'],
    description: 'time allowed between sending a request and receiving its headers (0 disables)',
    default: 30_000,
    parse: parseDurationMs(0, HOUR_MS),
  }),
  bodyTimeoutMs: spec({
    flags: '--body-timeout <duration>',
    env: ['DOWNLOAD_BODY_TIMEOUT'],
    description: 'longest silence allowed while receiving a body (0 disables)',
    default: 30_000,
    parse: parseDurationMs(0, HOUR_MS),
  }),
  maxRedirects: spec({
    flags: '--max-redirects <n>',
    env: ['DOWNLOAD_MAX_REDIRECTS'],
    description: 'redirect hops followed per request (0: do not follow)',
    default: 5,
    parse: parseInteger(0, 20),
  }),
  maxBytes: spec({
    flags: '--max-bytes <size>',
    env: ['DOWNLOAD_MAX_BYTES'],
    description: 'abort a download larger than this; an entry maxBytes wins (default: no limit)',
    parse: parseBytes(1),
  }),
  skipExisting: spec({
    flags: '--skip-existing',
    env: ['DOWNLOAD_SKIP_EXISTING'],
    description: 'leave files that already exist untouched (the default)',
    defaultLabel: 'true unless --overwrite or --if-changed',
    parse: parseBoolean,
  }),
  overwrite: spec({
    flags: '--overwrite',
    env: ['DOWNLOAD_OVERWRITE'],
    description: 'download again and replace files that already exist',
    default: false,
    parse: parseBoolean,
  }),
  ifChanged: spec({
    flags: '--if-changed',
    env: ['DOWNLOAD_IF_CHANGED'],
    description: 'replace an existing file only when the server says it changed (ETag / Last-Modified)',
    default: false,
    parse: parseBoolean,
  }),
  hash: spec<HashMode>({
    flags: '--hash <which>',
    env: ['DOWNLOAD_HASH'],
    description:
      'SHA-256 of every file (all), or only of entries that give a sha256 to verify (expected; saves CPU on huge files, and the report has sha256 null for the others)',
    default: 'all',
    parse: parseEnum(HASH_MODES),
  }),
  report: spec({
    flags: '--report <file>',
    env: ['DOWNLOAD_REPORT'],
    description: 'write a JSON report with one entry per URL',
    parse: parseString('a file path'),
  }),
  quiet: spec({
    flags: '--quiet',
    env: ['DOWNLOAD_QUIET'],
    description: 'no progress bar and no summary on stderr (warnings and errors still show)',
    default: false,
    parse: parseBoolean,
  }),
  json: spec({
    flags: '--json',
    description: 'print the run summary as one JSON object on stdout',
    default: false,
    parse: parseBoolean,
  }),
  maxInputBytes: spec({
    flags: '--max-input-bytes <size>',
    env: ['MAX_INPUT_BYTES'],
    description: 'refuse input files larger than this',
    default: DEFAULT_MAX_INPUT_FILE_BYTES,
    parse: parseBytes(2),
  }),
};
export type DownloadUrlsOptions = Resolved<typeof DOWNLOAD_URLS_OPTIONS>;

/** What one download run needs: the downloader service's options. */
export interface DownloadRunSettings {
  target: DownloadTarget;
  /** Downloads in flight overall. Default 16. */
  concurrency: number;
  /** Downloads in flight per host, and connections per origin. Default 6, or `concurrency` when lower. */
  perHost: number;
  /** Retries after the first attempt. Default 3. */
  retries: number;
  /** Base of the exponential backoff. Default 1 s. */
  retryDelayMs: number;
  /** Cap on any wait before a retry, including Retry-After. Default 30 s. */
  maxRetryWaitMs: number;
  /** Default 10 s. */
  connectTimeoutMs: number;
  /** 0 disables. Default 30 s. */
  headersTimeoutMs: number;
  /** 0 disables. Default 30 s. */
  bodyTimeoutMs: number;
  /** Default 5. */
  maxRedirects: number;
  /** Default size limit; an entry's own `maxBytes` wins. Undefined: no limit. */
  maxBytes?: number;
  /** Default `skip`. */
  existing: ExistingMode;
  /**
   * `all` (default): every file's SHA-256 is computed and reported; `expected`: only entries with a
   * sha256 (the others report `sha256: null`).
   */
  hash: HashMode;
  /** Present only with an S3 target: builds the S3 client when none is injected. */
  aws?: AwsSettings;
}

export interface DownloadSettings extends DownloadRunSettings {
  /** Absolute path of the URL list. */
  file: string;
  /** Absolute path of the JSON report, when asked for. */
  reportFile?: string;
  /** Default false. */
  quiet: boolean;
  /** Default false. */
  json: boolean;
  /** Default 64 MiB. */
  maxInputBytes: number;
}

/** How a setting is named in a cross-field message: the flag when given, else the variable that set it. */
function sourceName(
  sources: ConfigSources,
  key: keyof typeof DOWNLOAD_URLS_OPTIONS,
  s: Spec<unknown>,
): string {
  const flag = s.flags?.split(' ')[0] ?? key;
  if (sources.flags[key] !== undefined) return flag;
  const variable = (s.env ?? []).find(
    (name) => (sources.env[name] ?? '') !== '' || (sources.dotenv[name] ?? '') !== '',
  );
  return variable ?? flag;
}

/** Resolves and validates the settings of `download-urls`. Throws a ConfigError listing every problem. */
export function loadDownloadSettings(sources: ConfigSources, cwd: string = process.cwd()): DownloadSettings {
  const problems: string[] = [];
  const o = resolveOptions(DOWNLOAD_URLS_OPTIONS, sources, problems);
  const name = (key: keyof typeof DOWNLOAD_URLS_OPTIONS) =>
    sourceName(sources, key, DOWNLOAD_URLS_OPTIONS[key]);
  // AWS settings matter only for an S3 target; a bad AWS_REGION must not fail a disk run.
  const aws = o.to !== undefined ? resolveAwsSettings(sources, problems) : undefined;

  if (o.out !== undefined && o.to !== undefined) {
    problems.push(`${name('out')} and ${name('to')}: give one or the other`);
  }

  const perHost = o.perHost ?? Math.min(DEFAULT_PER_HOST, o.concurrency);
  if (o.perHost !== undefined && o.perHost > o.concurrency) {
    problems.push(
      `${name('perHost')}: got ${o.perHost}, expected at most the ${name('concurrency')} value (${o.concurrency})`,
    );
  }

  let existing: ExistingMode = 'skip';
  if (o.overwrite && o.ifChanged) {
    problems.push(`${name('overwrite')} and ${name('ifChanged')}: give one or the other`);
  } else if (o.skipExisting === true && (o.overwrite || o.ifChanged)) {
    const other = o.overwrite ? name('overwrite') : name('ifChanged');
    problems.push(`${name('skipExisting')} and ${other}: give one or the other`);
  } else if (o.overwrite || o.skipExisting === false) {
    existing = 'overwrite';
  } else if (o.ifChanged) {
    existing = 'if-changed';
  }

  if (problems.length > 0) throw new ConfigError(problems);

  const target: DownloadTarget =
    o.to !== undefined
      ? { kind: 's3', bucket: o.to.bucket, prefix: o.to.prefix }
      : { kind: 'disk', dir: resolve(cwd, o.out ?? 'downloads') };
  const settings: DownloadSettings = {
    file: resolve(cwd, o.file),
    target,
    concurrency: o.concurrency,
    perHost,
    retries: o.retries,
    retryDelayMs: o.retryDelayMs,
    maxRetryWaitMs: o.maxRetryWaitMs,
    connectTimeoutMs: o.connectTimeoutMs,
    headersTimeoutMs: o.headersTimeoutMs,
    bodyTimeoutMs: o.bodyTimeoutMs,
    maxRedirects: o.maxRedirects,
    existing,
    hash: o.hash,
    quiet: o.quiet,
    json: o.json,
    maxInputBytes: o.maxInputBytes,
  };
  if (aws !== undefined) settings.aws = aws;
  if (o.maxBytes !== undefined) settings.maxBytes = o.maxBytes;
  if (o.report !== undefined) settings.reportFile = resolve(cwd, o.report);
  return settings;
}
