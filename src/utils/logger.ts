import type { Writable } from 'node:stream';
import winston from 'winston';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogFields = Record<string, unknown>;

/**
 * The narrow logger every module receives. Events are snake_case names with structured fields:
 * `logger.info('message_deleted', { messageId })`. Output goes to stderr; stdout is for results.
 */
export interface Logger {
  error(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  debug(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every event. */
  child(fields: LogFields): Logger;
  isLevelEnabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  /** Default `info`. */
  level?: LogLevel;
  /** Default `json`. */
  format?: LogFormat;
  /** Default `process.stderr`. */
  stream?: Writable;
}

// ---------------------------------------------------------------------------------------------
// Redaction. Secrets may hide in three places: under a telling key (`password`, `authorization`),
// inside a string (a connection string, a URL's user-info, a signed header), or as a known value
// that the config loader registered (the actual AWS secret key or database password).
// ---------------------------------------------------------------------------------------------

export const REDACTED = '[REDACTED]';

const SECRET_KEY =
  /^pass$|password|passwd|pwd|secret|token|authori[sz]ation|cookie|credential|api[-_]?key|signature|private[-_]?key/i;

/** Keys whose value is a secret inside text: `password=...`, `"secretAccessKey":"..."`, `MSSQL_PASSWORD={...}`. */
const SECRET_PAIR_KEY =
  /\b([A-Za-z_]*(?:password|passwd|pwd|secret|token|accountkey|sharedaccesskey|api[-_]?key)[A-Za-z_]*)(["']?\s*([=:])\s*)/gi;

/** Where the value that starts at `start` ends: a braced or quoted value at its close, else by context. */
function pairValueEnd(text: string, start: number, sign: string, before: string | undefined): number {
  const open = text[start];
  const close = open === '{' ? '}' : open === '"' || open === "'" ? open : undefined;
  if (close !== undefined) {
    for (let i = start + 1; i < text.length; i++) {
      const c = text[i];
      if (c === '\r' || c === '\n') return i;
      if (c === '\\' && close !== '}') i++;
      else if (c === close) {
        if (text[i + 1] !== close) return i + 1;
        i++; // a doubled quote or brace is a literal one (ADO)
      }
    }
    return text.length;
  }
  // An unquoted ADO or env value runs to ";" or the end of the line ("Password=abc def;" and
  // "Password=p&ss" are one value each), except in a URL query, where "&" ends it.
  const inQuery = before === '?' || before === '&';
  const stop = sign === '=' && !inQuery ? /[;\r\n]/g : /[\s"';,&]/g;
  stop.lastIndex = start;
  return stop.exec(text)?.index ?? text.length;
}

/** Masks the value of every secret key=value or key: value pair in `text`. */
function maskSecretPairs(text: string): string {
  let out = '';
  let last = 0;
  SECRET_PAIR_KEY.lastIndex = 0;
  for (let m = SECRET_PAIR_KEY.exec(text); m !== null; m = SECRET_PAIR_KEY.exec(text)) {
    const [head, key = '', separator = '', sign = ''] = m;
    // An ARN names a secret without holding it: arn:aws:secretsmanager:region:account:secret:name.
    if (/(?:^|[\s"'(=,])arn:[^\s"']*$/.test(text.slice(Math.max(0, m.index - 200), m.index))) continue;
    const start = m.index + head.length;
    const end = pairValueEnd(text, start, sign, text[m.index - 1]);
    const value = text.slice(start, end);
    // Our own configuration problems read `MSSQL_PASSWORD: got an invalid value, expected ...`:
    // a setting name, ": " and prose, which holds no value (secret values are never echoed there).
    const prose =
      sign === ':' &&
      /^[A-Z][A-Z0-9_]*$/.test(key) &&
      /:\s/.test(separator) &&
      /^[a-z]+$/.test(value) &&
      (end === text.length || /\s/.test(text[end] ?? ''));
    if (value === '' || prose || /^["']?arn:/.test(value)) continue;
    const quote = value[0];
    // JSON and YAML keep their quotes; an ADO value loses them with the value.
    const masked = sign === ':' && (quote === '"' || quote === "'") ? `${quote}***${quote}` : '***';
    out += `${text.slice(last, m.index)}${key}${separator}${masked}`;
    last = end;
    SECRET_PAIR_KEY.lastIndex = end;
  }
  return out + text.slice(last);
}

const STRING_RULES: ReadonlyArray<(text: string) => string> = [
  // scheme://user:password@host -> scheme://user:***@host (mongodb, mongodb+srv, mssql, http...).
  // The password runs to the last "@" of the token, so an unencoded "/" or "@" in it is masked too;
  // "host:8080/" is a port, not a password.
  (text) =>
    text.replace(
      /\b([a-z][a-z0-9+.-]*:\/\/)([^:/@\s"'<>]*):(?!\d{1,5}(?:[/?#]|$))[^\s"'<>]+@/gi,
      '$1$2:***@',
    ),
  // Authorization: Bearer xyz / "authorization":"AWS4-HMAC-SHA256 ..." / Cookie: a=b -> to the end of the value
  (text) =>
    text.replace(
      /(\b(?:authori[sz]ation|(?:set-)?cookie)\b["']?\s*[:=]\s*["']?)[^"'\r\n]+/gi,
      `$1${REDACTED}`,
    ),
  // AWS SigV4 fragments that can appear on their own (presigned URLs, error dumps)
  (text) =>
    text.replace(
      /\b(Signature|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Credential)=([^\s,&;"']+)/g,
      '$1=***',
    ),
  // key=value and key: value pairs whose key names a secret (connection strings, env dumps, JSON)
  maskSecretPairs,
  // AWS access key ids: keep the prefix so operators can still tell which key was used
  (text) => text.replace(/\b((?:AKIA|ASIA)[A-Z0-9]{4})[A-Z0-9]{12}\b/g, '$1************'),
];

const registeredSecrets = new Set<string>();

/**
 * Registers a secret value (a password, a secret key) so that it is masked wherever it appears,
 * even in text we did not write, such as a driver's error message. Values shorter than 4
 * characters are ignored: masking them would shred ordinary words.
 */
export function registerSecret(value: string | undefined): void {
  if (value === undefined || value.length < 4) return;
  registeredSecrets.add(value);
  try {
    const decoded = decodeURIComponent(value);
    if (decoded !== value && decoded.length >= 4) registeredSecrets.add(decoded);
  } catch {
    // not percent-encoded; nothing more to register
  }
  const encoded = encodeURIComponent(value);
  if (encoded !== value) registeredSecrets.add(encoded);
}

/** Masks every secret this module knows how to recognise in one string. */
export function redactString(text: string): string {
  let out = text;
  for (const secret of registeredSecrets) {
    if (out.includes(secret)) out = out.split(secret).join('***');
  }
  for (const rule of STRING_RULES) out = rule(out);
  return out;
}

/** Serialises an error (with its cause chain) into plain fields, without the stack unless asked. */
export function serializeError(error: unknown, withStack = false, depth = 0): unknown {
  if (!(error instanceof Error)) return error;
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  const extra = error as Error & Record<string, unknown>;
  for (const key of ['code', 'retryable', 'details', '$fault', 'errno', 'syscall'] as const) {
    if (extra[key] !== undefined) out[key] = extra[key];
  }
  const meta = extra['$metadata'] as { httpStatusCode?: number; requestId?: string } | undefined;
  if (meta?.httpStatusCode !== undefined) out['httpStatusCode'] = meta.httpStatusCode;
  if (withStack && error.stack) out['stack'] = error.stack;
  if (error.cause !== undefined && depth < 4)
    out['cause'] = serializeError(error.cause, withStack, depth + 1);
  return out;
}

/** Deep-copies `value`, masking secrets by key and by content. Handles cycles and errors. */
export function redact(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return redact(serializeError(value), seen);
  if (value instanceof Date) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redact(item, seen));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] =
      SECRET_KEY.test(key) && inner !== undefined && inner !== null && typeof inner !== 'boolean'
        ? REDACTED
        : redact(inner, seen);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

const LEVEL_NUMBERS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

function prettyValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

function buildFormat(format: LogFormat): winston.Logform.Format {
  const finish = winston.format.printf((info) => {
    const { level, message, timestamp, ...rest } = info as winston.Logform.TransformableInfo & {
      timestamp: string;
    };
    const fields = redact(rest) as Record<string, unknown>;
    const event = redactString(String(message));
    if (format === 'json') return JSON.stringify({ time: timestamp, level, event, ...fields });
    const tail = Object.entries(fields)
      .map(([key, value]) => `${key}=${prettyValue(value)}`)
      .join(' ');
    return `${timestamp} ${level.padEnd(5)} ${event}${tail ? ` ${tail}` : ''}`;
  });
  return winston.format.combine(winston.format.timestamp(), finish);
}

class WinstonLogger implements Logger {
  constructor(
    private readonly inner: winston.Logger,
    private readonly level: LogLevel,
    private readonly bound: LogFields = {},
  ) {}

  private log(level: LogLevel, event: string, fields?: LogFields): void {
    if (!this.isLevelEnabled(level)) return;
    const merged: LogFields = { ...this.bound, ...fields };
    for (const [key, value] of Object.entries(merged)) {
      if (value instanceof Error) merged[key] = serializeError(value, this.level === 'debug');
    }
    this.inner.log({ level, message: event, ...merged });
  }

  error(event: string, fields?: LogFields): void {
    this.log('error', event, fields);
  }
  warn(event: string, fields?: LogFields): void {
    this.log('warn', event, fields);
  }
  info(event: string, fields?: LogFields): void {
    this.log('info', event, fields);
  }
  debug(event: string, fields?: LogFields): void {
    this.log('debug', event, fields);
  }
  child(fields: LogFields): Logger {
    return new WinstonLogger(this.inner, this.level, { ...this.bound, ...fields });
  }
  isLevelEnabled(level: LogLevel): boolean {
    return LEVEL_NUMBERS[level] <= LEVEL_NUMBERS[this.level];
  }
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const inner = winston.createLogger({
    level,
    levels: LEVEL_NUMBERS,
    format: buildFormat(options.format ?? 'json'),
    transports: [new winston.transports.Stream({ stream: options.stream ?? process.stderr })],
  });
  return new WinstonLogger(inner, level);
}

/** A logger that drops everything; for library callers that don't want output. */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLogger,
  isLevelEnabled: () => false,
};
