/**
 * SQL Server settings: a connection string (`MSSQL_URL`, URL or ADO.NET form) and/or discrete
 * `MSSQL_*` variables, where a discrete variable overrides the matching part of the string (so the
 * password can come from a secret store while the rest sits in .env). SQL Server is enabled when
 * a server is named, by `MSSQL_URL` or `MSSQL_HOST`. Only SQL Server authentication (a login and
 * a password) is supported: it is what the `tedious` driver offers on every platform.
 */
import type { MssqlConnectionOptions, MssqlEncrypt } from '../database/sql-server-connector.js';
import { InvalidSqlIdentifier, parseSqlTableName, type SqlTableName } from '../database/sql-identifiers.js';
import { registerSecret } from '../utils/logger.js';
import { resolveOptions, type ConfigSources } from './config-loader.js';
import {
  InvalidValue,
  parseBoolean,
  parseDurationMs,
  parseInteger,
  parseString,
  spec,
  type Parser,
} from './options.js';

export const MSSQL_DEFAULT_PORT = 1433;
export const MSSQL_DEFAULT_TABLE = 'dbo.messages';

/** Everything the SQL Server sink and `init-db` need. */
export interface MssqlSettings {
  connection: MssqlConnectionOptions;
  table: SqlTableName;
}

/** What a connection string may set; discrete variables and defaults fill in the rest. */
export interface MssqlConnectionStringParts {
  server?: string;
  port?: number;
  instanceName?: string;
  database?: string;
  user?: string;
  password?: string;
  encrypt?: MssqlEncrypt;
  trustServerCertificate?: boolean;
  connectTimeoutMs?: number;
  appName?: string;
  poolMax?: number;
  /**
   * The password as spelled in the string (percent-encoded, quoted or braced), for redaction:
   * text that quotes the connection string shows this spelling, not the decoded password.
   */
  passwordAsWritten?: string;
}

/** Why a connection string was refused. The message never contains a value, only key names. */
export class MssqlConnectionStringError extends Error {}

const CONNECTION_STRING_EXPECTED =
  'a connection string such as mssql://user:password@host:1433/database?encrypt=true ' +
  '(percent-encode special characters) or Server=host,1433;Database=database;User Id=user;Password=...;Encrypt=true';

// ---------------------------------------------------------------------------------------------
// Connection strings
// ---------------------------------------------------------------------------------------------

const ENCRYPT_WORDS: Record<string, MssqlEncrypt> = {
  true: true,
  yes: true,
  '1': true,
  mandatory: true,
  false: false,
  no: false,
  '0': false,
  optional: false,
  strict: 'strict',
};

function encryptFrom(word: string, where: string): MssqlEncrypt {
  const value = ENCRYPT_WORDS[word.trim().toLowerCase()];
  if (value === undefined) throw new MssqlConnectionStringError(`${where}: expected true, false or strict`);
  return value;
}

function booleanFrom(word: string, where: string): boolean {
  try {
    return parseBoolean(word);
  } catch {
    throw new MssqlConnectionStringError(`${where}: expected true or false`);
  }
}

function integerFrom(word: string, where: string, min: number, max: number): number {
  const trimmed = word.trim();
  const n = Number(trimmed);
  if (!/^\d+$/.test(trimmed) || n < min || n > max) {
    throw new MssqlConnectionStringError(`${where}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

function checkHost(host: string, where: string): string {
  if (host === '' || /[\s;,\\/]/.test(host))
    throw new MssqlConnectionStringError(`${where}: expected a host name`);
  return host;
}

function percentDecode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new MssqlConnectionStringError(
      `${what} has a "%" not followed by two hex digits (write "%" as %25)`,
    );
  }
}

/** `mssql://user:password@host:port/database?encrypt=...&trustServerCertificate=...&instanceName=...` */
function parseUrlForm(text: string): MssqlConnectionStringParts {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new MssqlConnectionStringError('not a valid URL');
  }
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  if (scheme !== 'mssql' && scheme !== 'sqlserver') {
    throw new MssqlConnectionStringError(`scheme "${scheme}" is not mssql or sqlserver`);
  }
  if (url.hash !== '') {
    throw new MssqlConnectionStringError('it contains "#": percent-encode it as %23 in the password');
  }
  const parts: MssqlConnectionStringParts = {
    server: checkHost(url.hostname.replace(/^\[(.*)\]$/, '$1'), 'the host'),
  };
  if (url.port !== '') parts.port = Number(url.port);
  if (url.username !== '') parts.user = percentDecode(url.username, 'the user name');
  if (url.password !== '') {
    parts.password = percentDecode(url.password, 'the password');
    parts.passwordAsWritten = url.password;
  }
  const path = url.pathname.replace(/^\/+|\/+$/g, '');
  if (path.includes('/')) throw new MssqlConnectionStringError('the path must be one database name');
  if (path !== '') parts.database = percentDecode(path, 'the database name');
  let position = 0;
  for (const [name, value] of url.searchParams) {
    position++;
    switch (name.toLowerCase()) {
      case 'encrypt':
        parts.encrypt = encryptFrom(value, 'encrypt');
        break;
      case 'trustservercertificate':
        parts.trustServerCertificate = booleanFrom(value, 'trustServerCertificate');
        break;
      case 'instancename':
        if (value.trim() === '') throw new MssqlConnectionStringError('instanceName: expected a name');
        parts.instanceName = value.trim();
        break;
      default:
        // By position, not by name: with an unencoded "?" in the password, the "name" is its tail.
        throw new MssqlConnectionStringError(
          `query parameter ${position} is not supported (supported: encrypt, trustServerCertificate, instanceName)`,
        );
    }
  }
  return parts;
}

/**
 * Splits `key=value;...` the way ADO.NET does: values may be wrapped in "..." or '...' (a doubled
 * quote inside is a literal quote) or in ODBC braces {...} (a doubled } inside is a literal), which
 * is how a password holding `;` is written. Keys are case-insensitive.
 */
export function splitAdoConnectionString(
  text: string,
): Array<[key: string, value: string, asWritten: string]> {
  const pairs: Array<[string, string, string]> = [];
  let i = 0;
  // Problems name a part by its position, never by its key: after a password holding an unquoted
  // ";", the next "key" is the tail of the password.
  let part = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && (text[i] === ';' || /\s/.test(text[i] ?? ''))) i++;
    if (i >= n) break;
    part++;
    const eq = text.indexOf('=', i);
    const semi = text.indexOf(';', i);
    if (eq === -1 || (semi !== -1 && semi < eq)) {
      // Never echo the fragment: it may be the tail of a password that held an unquoted ';'.
      throw new MssqlConnectionStringError(
        `part ${part} has no "=" (wrap values that contain ";" in {braces} or "quotes")`,
      );
    }
    const key = text.slice(i, eq).trim().toLowerCase().replace(/\s+/g, ' ');
    if (key === '') throw new MssqlConnectionStringError(`part ${part} has an empty key`);
    i = eq + 1;
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
    const valueStart = i;
    const open = text[i];
    let value: string;
    if (open === '"' || open === "'" || open === '{') {
      const close = open === '{' ? '}' : open;
      let out = '';
      i++;
      for (;;) {
        if (i >= n) throw new MssqlConnectionStringError(`the value in part ${part} has no closing ${close}`);
        const c = text[i] as string;
        if (c === close) {
          if (text[i + 1] === close) {
            out += close;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        out += c;
        i++;
      }
      while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
      if (i < n && text[i] !== ';') {
        throw new MssqlConnectionStringError(
          `the value in part ${part} continues after its closing ${close} (double a ${close} inside it)`,
        );
      }
      value = out;
    } else {
      const end = text.indexOf(';', i);
      value = text.slice(i, end === -1 ? n : end).trim();
      i = end === -1 ? n : end;
    }
    pairs.push([key, value, text.slice(valueStart, i).trim()]);
  }
  return pairs;
}

/** `tcp:host\instance,port`, `host,port`, `(local)`; named pipes and shared memory are not supported. */
function parseServerValue(value: string, parts: MssqlConnectionStringParts): void {
  let rest = value.trim();
  if (/^(np|lpc|admin):/i.test(rest)) {
    throw new MssqlConnectionStringError('Server: only TCP is supported (no np:, lpc: or admin:)');
  }
  rest = rest.replace(/^tcp:/i, '');
  const comma = rest.lastIndexOf(',');
  if (comma !== -1) {
    parts.port = integerFrom(rest.slice(comma + 1), 'the port in Server', 1, 65_535);
    rest = rest.slice(0, comma).trim();
  }
  const backslash = rest.indexOf('\\');
  if (backslash !== -1) {
    const instance = rest.slice(backslash + 1).trim();
    if (instance === '') throw new MssqlConnectionStringError('Server: expected an instance name after "\\"');
    parts.instanceName = instance;
    rest = rest.slice(0, backslash).trim();
  }
  if (rest === '.' || rest.toLowerCase() === '(local)') rest = 'localhost';
  parts.server = checkHost(rest, 'Server');
}

// Keys that ADO.NET strings commonly carry (Azure's portal adds several) and that change nothing
// about how this tool connects or stores.
const IGNORED_ADO_KEYS = new Set([
  'persist security info',
  'multipleactiveresultsets',
  'pooling',
  'min pool size',
  'connectretrycount',
  'connectretryinterval',
  'multisubnetfailover',
  'packet size',
  'load balance timeout',
  'transparentnetworkipresolution',
  'workstation id',
  'wsid',
  'applicationintent',
  'application intent',
]);

function parseAdoForm(text: string): MssqlConnectionStringParts {
  const parts: MssqlConnectionStringParts = {};
  for (const [index, [key, value, asWritten]] of splitAdoConnectionString(text).entries()) {
    switch (key) {
      case 'server':
      case 'data source':
      case 'address':
      case 'addr':
      case 'network address':
        parseServerValue(value, parts);
        break;
      case 'database':
      case 'initial catalog':
        if (value !== '') parts.database = value;
        break;
      case 'user id':
      case 'uid':
      case 'user':
      case 'username':
      case 'user name':
        if (value !== '') parts.user = value;
        break;
      case 'password':
      case 'pwd':
        if (value !== '') {
          parts.password = value;
          parts.passwordAsWritten = asWritten;
        }
        break;
      case 'encrypt':
        parts.encrypt = encryptFrom(value, 'Encrypt');
        break;
      case 'trustservercertificate':
      case 'trust server certificate':
        parts.trustServerCertificate = booleanFrom(value, 'TrustServerCertificate');
        break;
      case 'connection timeout':
      case 'connect timeout':
      case 'timeout':
        parts.connectTimeoutMs = integerFrom(value, 'Connection Timeout (seconds)', 1, 3600) * 1000;
        break;
      case 'application name':
      case 'app':
        if (value !== '') parts.appName = value;
        break;
      case 'max pool size':
        parts.poolMax = integerFrom(value, 'Max Pool Size', 1, 1000);
        break;
      case 'authentication':
        if (!/^sql ?password$/i.test(value.trim())) {
          throw new MssqlConnectionStringError(
            'Authentication: only SqlPassword (a login and a password) is supported',
          );
        }
        break;
      case 'integrated security':
      case 'trusted_connection':
        if (/^(true|yes|sspi)$/i.test(value.trim())) {
          throw new MssqlConnectionStringError(
            `${key}: only SQL Server authentication (a login and a password) is supported`,
          );
        }
        break;
      default:
        if (!IGNORED_ADO_KEYS.has(key)) {
          throw new MssqlConnectionStringError(
            `part ${index + 1} has an unsupported key (supported: Server, Database, User Id, Password, Encrypt, ` +
              'TrustServerCertificate, Connection Timeout, Application Name, Max Pool Size)',
          );
        }
    }
  }
  if (parts.server === undefined) throw new MssqlConnectionStringError('it names no Server');
  return parts;
}

/** Parses either form. Throws MssqlConnectionStringError naming the part that is wrong, never a value. */
export function parseMssqlConnectionString(text: string): MssqlConnectionStringParts {
  const trimmed = text.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) return parseUrlForm(trimmed);
  if (trimmed.includes('=')) return parseAdoForm(trimmed);
  throw new MssqlConnectionStringError('neither a mssql:// URL nor Key=Value pairs');
}

const parseConnectionStringSpec: Parser<MssqlConnectionStringParts> = (raw) => {
  if (typeof raw !== 'string' || raw.trim() === '') throw new InvalidValue(CONNECTION_STRING_EXPECTED);
  try {
    return parseMssqlConnectionString(raw);
  } catch (error) {
    if (error instanceof MssqlConnectionStringError) {
      throw new InvalidValue(`${CONNECTION_STRING_EXPECTED}; ${error.message}`);
    }
    throw error;
  }
};

const parseTableSpec: Parser<SqlTableName> = (raw) => {
  const expected = 'a table name such as dbo.messages or messages';
  if (typeof raw !== 'string') throw new InvalidValue(expected);
  try {
    return parseSqlTableName(raw);
  } catch (error) {
    if (error instanceof InvalidSqlIdentifier) throw new InvalidValue(`${expected}: ${error.message}`);
    throw error;
  }
};

const parseEncryptSpec: Parser<MssqlEncrypt> = (raw) => {
  if (typeof raw === 'boolean') return raw;
  const value = ENCRYPT_WORDS[raw.trim().toLowerCase()];
  if (value === undefined) throw new InvalidValue('true, false or strict (TDS 8.0)');
  return value;
};

const parseHostSpec: Parser<string> = (raw) => {
  const expected = 'a host name or IP address (the port goes in MSSQL_PORT)';
  const host = parseString(expected)(raw);
  if (/[\s;,\\/]/.test(host)) throw new InvalidValue(expected);
  return host;
};

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/**
 * The SQL Server options. Settings a connection string can carry have no default here, so that a
 * default cannot override what `MSSQL_URL` says; `resolveMssqlSettings` applies the defaults.
 */
export const MSSQL_OPTIONS = {
  mssqlUrl: spec({
    flags: '--mssql-url <connection-string>',
    env: ['MSSQL_URL'],
    description:
      'SQL Server connection string (mssql://user:password@host:1433/db or Server=...;...); enables the SQL Server store',
    secret: true,
    parse: parseConnectionStringSpec,
  }),
  mssqlHost: spec({
    env: ['MSSQL_HOST'],
    description: 'SQL Server host, instead of or over the one in MSSQL_URL; enables the SQL Server store',
    parse: parseHostSpec,
  }),
  mssqlPort: spec({
    env: ['MSSQL_PORT'],
    description: 'SQL Server TCP port',
    defaultLabel: '1433, or the one in MSSQL_URL',
    parse: parseInteger(1, 65_535),
  }),
  mssqlDatabase: spec({
    env: ['MSSQL_DATABASE'],
    description: 'database that holds the messages table (required, here or in MSSQL_URL)',
    parse: parseString('a database name'),
  }),
  mssqlUser: spec({
    env: ['MSSQL_USER'],
    description: 'SQL Server login (required, here or in MSSQL_URL)',
    parse: parseString('a login name'),
  }),
  mssqlPassword: spec({
    env: ['MSSQL_PASSWORD'],
    description: 'password of the login (required, here or in MSSQL_URL)',
    secret: true,
    parse: parseString('a password'),
  }),
  mssqlEncrypt: spec({
    env: ['MSSQL_ENCRYPT'],
    description: 'encrypt the connection (TLS): true, false or strict',
    defaultLabel: 'true, or the one in MSSQL_URL',
    parse: parseEncryptSpec,
  }),
  mssqlTrustServerCertificate: spec({
    env: ['MSSQL_TRUST_SERVER_CERTIFICATE'],
    description: "accept the server's certificate without checking it (self-signed, local containers only)",
    defaultLabel: 'false, or the one in MSSQL_URL',
    parse: parseBoolean,
  }),
  mssqlTable: spec({
    flags: '--mssql-table <name>',
    env: ['MSSQL_TABLE'],
    description: 'table that receives the messages, table or schema.table',
    default: () => parseSqlTableName(MSSQL_DEFAULT_TABLE),
    defaultLabel: MSSQL_DEFAULT_TABLE,
    parse: parseTableSpec,
  }),
  mssqlPoolMax: spec({
    env: ['MSSQL_POOL_MAX'],
    description: 'connections the pool may open',
    defaultLabel: '10, or Max Pool Size in MSSQL_URL',
    parse: parseInteger(1, 1000),
  }),
  mssqlConnectTimeoutMs: spec({
    env: ['MSSQL_CONNECT_TIMEOUT'],
    description: 'how long to wait for a connection',
    defaultLabel: '15s, or Connection Timeout in MSSQL_URL',
    parse: parseDurationMs(1000, 3_600_000),
  }),
  mssqlRequestTimeoutMs: spec({
    env: ['MSSQL_REQUEST_TIMEOUT'],
    description: 'how long one statement may run before it fails (and is retried later)',
    default: 30_000,
    parse: parseDurationMs(1000, 3_600_000),
  }),
};

const DEFAULTS = {
  encrypt: true,
  trustServerCertificate: false,
  poolMax: 10,
  connectTimeoutMs: 15_000,
  appName: 'aws-msg',
} as const;

/** Settings that mean something only once a server is named. */
const NEED_A_SERVER = [
  ['mssqlPort', 'MSSQL_PORT'],
  ['mssqlDatabase', 'MSSQL_DATABASE'],
  ['mssqlUser', 'MSSQL_USER'],
  ['mssqlPassword', 'MSSQL_PASSWORD'],
  ['mssqlEncrypt', 'MSSQL_ENCRYPT'],
  ['mssqlTrustServerCertificate', 'MSSQL_TRUST_SERVER_CERTIFICATE'],
] as const;

/**
 * Resolves the SQL Server settings, or undefined when SQL Server is not configured (neither
 * `MSSQL_URL` nor `MSSQL_HOST`). Problems are appended to `problems`, one line each. The password
 * is registered for redaction, whichever source it came from.
 */
export function resolveMssqlSettings(sources: ConfigSources, problems: string[]): MssqlSettings | undefined {
  const o = resolveOptions(MSSQL_OPTIONS, sources, problems);
  const url: MssqlConnectionStringParts = o.mssqlUrl ?? {};
  const server = o.mssqlHost ?? url.server;
  if (server === undefined) {
    const stray = NEED_A_SERVER.filter(([key]) => o[key] !== undefined).map(([, name]) => name);
    if (stray.length > 0) {
      problems.push(
        `${stray.join(', ')}: set --mssql-url (MSSQL_URL) or MSSQL_HOST as well; without a server SQL Server is not enabled`,
      );
    }
    return undefined;
  }
  const database = o.mssqlDatabase ?? url.database;
  const user = o.mssqlUser ?? url.user;
  const password = o.mssqlPassword ?? url.password;
  registerSecret(password);
  registerSecret(url.passwordAsWritten);
  if (database === undefined) {
    problems.push(
      'MSSQL_DATABASE (or the database in --mssql-url/MSSQL_URL) is required when SQL Server is enabled',
    );
  }
  if (user === undefined) {
    problems.push('MSSQL_USER (or the user in --mssql-url/MSSQL_URL) is required when SQL Server is enabled');
  }
  if (password === undefined) {
    problems.push(
      'MSSQL_PASSWORD (or the password in --mssql-url/MSSQL_URL) is required when SQL Server is enabled',
    );
  }
  if (database === undefined || user === undefined || password === undefined) return undefined;

  const port = o.mssqlPort ?? url.port;
  // An explicit port wins over an instance name (as in ADO.NET); otherwise SQL Browser finds the port.
  const instanceName = port === undefined ? url.instanceName : undefined;
  const connection: MssqlConnectionOptions = {
    server,
    database,
    user,
    password,
    encrypt: o.mssqlEncrypt ?? url.encrypt ?? DEFAULTS.encrypt,
    trustServerCertificate:
      o.mssqlTrustServerCertificate ?? url.trustServerCertificate ?? DEFAULTS.trustServerCertificate,
    appName: url.appName ?? DEFAULTS.appName,
    poolMax: o.mssqlPoolMax ?? url.poolMax ?? DEFAULTS.poolMax,
    connectTimeoutMs: o.mssqlConnectTimeoutMs ?? url.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    requestTimeoutMs: o.mssqlRequestTimeoutMs,
  };
  if (instanceName !== undefined) connection.instanceName = instanceName;
  else connection.port = port ?? MSSQL_DEFAULT_PORT;
  return { connection, table: o.mssqlTable };
}
