/**
 * The SQL Server sink, on the `mssql` package (tedious driver) with a connection pool.
 *
 * Each batch is one `MERGE ... WITH (HOLDLOCK)` upsert keyed by the message key, every value a
 * typed parameter. HOLDLOCK makes the MERGE serializable on the key range, so two processes
 * storing the same key at once cannot both insert it. A statement is atomic: when it fails it has
 * written nothing, so the batch can be split and retried freely (every write is an idempotent
 * upsert) until the rows at fault are found; only those messages fail.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import sql from 'mssql';
import type { ConnectionPool, ISqlType, config as MssqlPoolConfig } from 'mssql';
import { AppError, describeError } from '../utils/errors.js';
import { redactString, silentLogger, type Logger } from '../utils/logger.js';
import { failAll, type ItemResult, type MessageRecord, type Sink } from './sink.js';
import type { SqlTableName } from './sql-identifiers.js';
import { splitSqlBatches, substituteSqlVariables } from './sql-script.js';

/** TLS for the connection: on, off, or TDS 8.0 strict mode. */
export type MssqlEncrypt = boolean | 'strict';

/** How to reach SQL Server. Resolved by `config/mssql-settings.ts`, which applies the defaults. */
export interface MssqlConnectionOptions {
  server: string;
  /** TCP port. Undefined only with `instanceName`, when SQL Browser resolves the port. */
  port?: number;
  instanceName?: string;
  database: string;
  user: string;
  password: string;
  /** Default (in config) true. */
  encrypt: MssqlEncrypt;
  /** Default (in config) false: the certificate is verified. */
  trustServerCertificate: boolean;
  /** Shown in sys.dm_exec_sessions. Default (in config) `aws-msg`. */
  appName: string;
  /** Most connections the pool opens. Default (in config) 10. */
  poolMax: number;
  /** Default (in config) 15000 ms. */
  connectTimeoutMs: number;
  /** A statement running longer fails with ETIMEOUT (retried later). Default (in config) 30000 ms. */
  requestTimeoutMs: number;
}

// ---------------------------------------------------------------------------------------------
// The narrow slice of mssql's pool the sink and init-db use; a ConnectionPool satisfies it.
// ---------------------------------------------------------------------------------------------

export interface MssqlQueryResult {
  recordset?: Array<Record<string, unknown>>;
  rowsAffected: number[];
}

export interface MssqlRequest {
  input(name: string, type: ISqlType, value: unknown): unknown;
  query(command: string): Promise<MssqlQueryResult>;
  batch(command: string): Promise<MssqlQueryResult>;
}

export interface MssqlTransaction {
  begin(): Promise<unknown>;
  commit(): Promise<unknown>;
  rollback(): Promise<unknown>;
  request(): MssqlRequest;
}

export interface MssqlPool {
  readonly connected: boolean;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  request(): MssqlRequest;
  transaction(): MssqlTransaction;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  removeListener(event: 'error', listener: (error: unknown) => void): unknown;
}

export function toPoolConfig(connection: MssqlConnectionOptions): MssqlPoolConfig {
  return {
    server: connection.server,
    ...(connection.port !== undefined ? { port: connection.port } : {}),
    database: connection.database,
    user: connection.user,
    password: connection.password,
    connectionTimeout: connection.connectTimeoutMs,
    requestTimeout: connection.requestTimeoutMs,
    pool: { min: 0, max: connection.poolMax, idleTimeoutMillis: 30_000 },
    options: {
      encrypt: connection.encrypt,
      trustServerCertificate: connection.trustServerCertificate,
      appName: connection.appName,
      // DATETIME2 values are read and written as UTC, whatever the machine's time zone.
      useUTC: true,
      ...(connection.instanceName !== undefined ? { instanceName: connection.instanceName } : {}),
    },
  };
}

export function createMssqlPool(connection: MssqlConnectionOptions): ConnectionPool {
  return new sql.ConnectionPool(toPoolConfig(connection));
}

/** `SQL Server db.example.com:1433/shop [dbo].[messages]`: where, never who or with what password. */
export function describeMssqlTarget(connection: MssqlConnectionOptions, table?: SqlTableName): string {
  const address =
    connection.instanceName !== undefined
      ? `${connection.server}\\${connection.instanceName}`
      : `${connection.server}:${connection.port ?? 1433}`;
  return `SQL Server ${address}/${connection.database}${table ? ` ${table.quoted}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

interface Column {
  name: string;
  type: ISqlType;
  /** Characters the column holds; longer values are refused before they reach the server. */
  maxLength?: number;
  value(record: MessageRecord): string | number | Date | null;
}

/** The key column's width: 450 characters is 900 bytes, the most an index key may hold. */
export const MSSQL_KEY_MAX_LENGTH = 450;

/**
 * The columns one message fills, in statement order, with the parameter type of each. The types
 * match `create_messages_table.sql` exactly, so the server never converts a parameter implicitly
 * (which could turn the key lookup into a scan). `stored_at` is not here: the server sets it.
 */
export const MESSAGE_COLUMNS: readonly Column[] = [
  {
    name: 'message_key',
    type: sql.NVarChar(MSSQL_KEY_MAX_LENGTH),
    maxLength: MSSQL_KEY_MAX_LENGTH,
    value: (r) => r.key,
  },
  { name: 'message_id', type: sql.NVarChar(128), maxLength: 128, value: (r) => r.messageId },
  { name: 'body', type: sql.NVarChar(sql.MAX), value: (r) => r.rawBody },
  { name: 'group_id', type: sql.NVarChar(128), maxLength: 128, value: (r) => r.groupId ?? null },
  {
    name: 'sequence_number',
    type: sql.NVarChar(128),
    maxLength: 128,
    value: (r) => r.sequenceNumber ?? null,
  },
  {
    name: 'deduplication_id',
    type: sql.NVarChar(128),
    maxLength: 128,
    value: (r) => r.deduplicationId ?? null,
  },
  { name: 'sent_at', type: sql.DateTime2(3), value: (r) => r.sentAt },
  { name: 'received_at', type: sql.DateTime2(3), value: (r) => r.receivedAt },
  { name: 'first_received_at', type: sql.DateTime2(3), value: (r) => r.firstReceivedAt ?? null },
  { name: 'receive_count', type: sql.Int(), value: (r) => r.receiveCount },
  { name: 'attributes', type: sql.NVarChar(sql.MAX), value: (r) => JSON.stringify(r.attributes) },
  {
    name: 'message_attributes',
    type: sql.NVarChar(sql.MAX),
    value: (r) => JSON.stringify(r.messageAttributes),
  },
  { name: 'archive_key', type: sql.NVarChar(1024), maxLength: 1024, value: (r) => r.archiveKey ?? null },
];

/** SQL Server's limit on the parameters of one request. */
export const MSSQL_MAX_PARAMETERS = 2100;

/**
 * Rows per MERGE. The batch is sent as multi-row VALUES of typed parameters, chunked so that no
 * request passes the 2,100-parameter limit (less the two that sp_executesql itself takes, as
 * EF Core reckons): 161 rows of 13 columns, more than the default store batch (100), so a batch
 * is normally one statement. A table-valued parameter would lift the limit but needs a
 * user-defined table type in the database, a second schema object to create, grant and keep in
 * step with the table, for no gain at these batch sizes.
 */
export const MSSQL_ROWS_PER_STATEMENT = Math.floor((MSSQL_MAX_PARAMETERS - 2) / MESSAGE_COLUMNS.length);

const COLUMN_LIST = MESSAGE_COLUMNS.map((c) => c.name).join(', ');

/** The upsert for `rowCount` rows. Only identifiers we validated and parameter names are in the text. */
export function buildMergeStatement(table: SqlTableName, rowCount: number): string {
  const rows: string[] = [];
  for (let row = 0; row < rowCount; row++) {
    rows.push(`(${MESSAGE_COLUMNS.map((c) => `@${c.name}_${row}`).join(', ')})`);
  }
  const updates = MESSAGE_COLUMNS.filter((c) => c.name !== 'message_key').map(
    (c) => `${c.name} = s.${c.name}`,
  );
  return [
    `MERGE INTO ${table.quoted} WITH (HOLDLOCK) AS t`,
    `USING (VALUES ${rows.join(', ')}) AS s (${COLUMN_LIST})`,
    'ON t.message_key = s.message_key',
    `WHEN MATCHED THEN UPDATE SET ${updates.join(', ')}, stored_at = SYSUTCDATETIME()`,
    `WHEN NOT MATCHED BY TARGET THEN INSERT (${COLUMN_LIST}, stored_at)`,
    `VALUES (${MESSAGE_COLUMNS.map((c) => `s.${c.name}`).join(', ')}, SYSUTCDATETIME());`,
  ].join('\n');
}

// DATETIME2 covers years 1 to 9999; a JavaScript Date can hold far more, or be invalid.
// (Date.UTC would read year 1 as 1901, hence the ISO strings.)
const DATETIME2_MIN_MS = Date.parse('0001-01-01T00:00:00.000Z');
const DATETIME2_MAX_MS = Date.parse('9999-12-31T23:59:59.999Z');
const INT_MAX = 2_147_483_647;

/**
 * Why a record can never be stored in the table, found before it is sent: a value the driver
 * would otherwise send to fail the whole statement. Undefined when the record is fine.
 */
export function recordProblem(record: MessageRecord): string | undefined {
  for (const column of MESSAGE_COLUMNS) {
    const value = column.value(record);
    if (column.maxLength !== undefined && typeof value === 'string' && value.length > column.maxLength) {
      return `${column.name} is ${value.length} characters long; the column holds at most ${column.maxLength}`;
    }
    if (value instanceof Date) {
      const ms = value.getTime();
      if (Number.isNaN(ms) || ms < DATETIME2_MIN_MS || ms > DATETIME2_MAX_MS) {
        return `${column.name} is not a date SQL Server can store`;
      }
    }
  }
  // Keys differing only in trailing spaces ("A1" and "A1 ") are one key to SQL Server: "=" and the
  // primary key pad the shorter with spaces, even under a BIN2 collation. Comparing DATALENGTH in
  // the MERGE would not help (the primary key would still refuse the second row), so such a key
  // is refused here rather than stored over another message's row while both are acknowledged.
  if (record.key.endsWith(' ')) {
    return 'message_key ends with a space: SQL Server ignores trailing spaces when it compares keys, so it would share a row with the same key without them';
  }
  if (typeof record.rawBody !== 'string') return 'the body is not text';
  if (!Number.isInteger(record.receiveCount) || record.receiveCount < 0 || record.receiveCount > INT_MAX) {
    return 'receive_count is not an integer from 0 to 2147483647';
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * - `transient`: not the message's fault; try again later. Outages, timeouts, deadlocks, a busy
 *   or failing-over server, and store problems an operator fixes (table missing, permissions, log full).
 * - `record`: the data of a row is refused (constraint, conversion, truncation): that row can never
 *   be stored as it is, so it is isolated and rejected.
 * - `unknown`: a server error we cannot place; its row is isolated, but not rejected for good.
 */
export type MssqlErrorKind = 'transient' | 'record' | 'unknown';

/** Server error numbers that are not the data's fault. */
export const TRANSIENT_ERROR_NUMBERS: ReadonlySet<number> = new Set([
  // transport and login-time network errors
  20, 64, 121, 233, 10053, 10054, 10060,
  // deadlock victim, lock request timeout, out of lock resources, snapshot update conflict
  1205, 1222, 1204, 3960,
  // memory and compile-time resource waits
  701, 8628, 8645, 8651,
  // a database that cannot be opened, is read-only, or is on a secondary replica
  4060, 4221, 976, 983, 3906,
  // full transaction log or filegroup
  9002, 1105,
  // the table or a column is missing, or permission is denied: fixed by an operator, then retried
  207, 208, 229, 230, 262, 916, 18452, 18456,
  // Azure SQL: service busy, failover, resource governance, serverless resume, throttling
  10928, 10929, 40143, 40197, 40501, 40540, 40544, 40549, 40550, 40551, 40552, 40553, 40613, 41301, 41302,
  41305, 41325, 41839, 42108, 42109, 49918, 49919, 49920, 49977, 49983,
]);

/** Server error numbers raised by the data of a row. */
export const RECORD_ERROR_NUMBERS: ReadonlySet<number> = new Set([
  // CHECK (ISJSON(...)) and other constraints, duplicate keys, NULL into NOT NULL
  547, 2627, 2601, 515,
  // conversion and arithmetic overflow
  241, 242, 245, 220, 232, 244, 248, 517, 8114, 8115,
  // string or binary data would be truncated
  2628, 8152,
  // MERGE matched one target row twice: two keys SQL Server compares as equal ('a' and 'a ')
  8672,
  // JSON text is not properly formatted
  13609,
  // a parameter value the server cannot read as its declared type
  8016, 8018, 8023,
]);

/** mssql/tedious codes of errors that happen before or beside the statement: the connection, not the data. */
const TRANSIENT_CODES = new Set([
  'ESOCKET',
  'ECONNCLOSED',
  'ETIMEOUT',
  'ENOTOPEN',
  'ENOCONN',
  'ELOGIN',
  'EINSTLOOKUP',
  'ECANCEL',
  'EABORT',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

interface ServerErrorInfo {
  number?: unknown;
  class?: unknown;
  code?: unknown;
  info?: { number?: unknown; class?: unknown };
  originalError?: unknown;
  precedingErrors?: unknown;
}

/** Every SQL Server error number the error carries, its own and those raised before it in the same request. */
export function sqlErrorNumbers(error: unknown): number[] {
  const numbers: number[] = [];
  const visit = (e: unknown, depth: number) => {
    if (e === null || typeof e !== 'object' || depth > 3) return;
    const info = e as ServerErrorInfo;
    for (const candidate of [info.number, info.info?.number]) {
      if (typeof candidate === 'number' && !numbers.includes(candidate)) numbers.push(candidate);
    }
    if (Array.isArray(info.precedingErrors)) for (const p of info.precedingErrors) visit(p, depth + 1);
    visit(info.originalError, depth + 1);
  };
  visit(error, 0);
  return numbers;
}

function severityOf(error: unknown): number | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const info = error as ServerErrorInfo;
  const value = Number(info.class ?? info.info?.class);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * tarn's TimeoutError: every pooled connection stayed busy for the acquire timeout. It carries no
 * code or number; mssql prefixes its message. The pool, not a row, is at fault.
 */
function isPoolAcquireTimeout(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.constructor.name === 'TimeoutError') return true;
  if (/^Failed to acquire a connection from the pool/.test(error.message)) return true;
  return isPoolAcquireTimeout((error as ServerErrorInfo).originalError);
}

function codeOf(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const info = error as ServerErrorInfo;
  if (typeof info.code === 'string') return info.code;
  return codeOf(info.originalError);
}

export function classifyMssqlError(error: unknown): MssqlErrorKind {
  const numbers = sqlErrorNumbers(error);
  // When in doubt between the two, retrying is the safe side: a rejected message leaves the queue.
  if (numbers.some((n) => TRANSIENT_ERROR_NUMBERS.has(n))) return 'transient';
  if (numbers.some((n) => RECORD_ERROR_NUMBERS.has(n))) return 'record';
  // Severity 17 and up: resources exhausted (17-19) or a fatal error that closed the connection (20+).
  const severity = severityOf(error);
  if (severity !== undefined && severity >= 17) return 'transient';
  const code = codeOf(error);
  if (code === 'EPARAM') return 'record';
  if (code !== undefined && TRANSIENT_CODES.has(code)) return 'transient';
  if (error instanceof sql.ConnectionError || error instanceof sql.TransactionError) return 'transient';
  if (isPoolAcquireTimeout(error)) return 'transient';
  return 'unknown';
}

export function isTransientMssqlError(error: unknown): boolean {
  return classifyMssqlError(error) === 'transient';
}

/** One line, numbered when the server numbered it, secrets masked. */
export function describeMssqlError(error: unknown): string {
  const [number] = sqlErrorNumbers(error);
  // A numbered server error says enough; the driver's EREQUEST code would only be noise.
  const raw = number !== undefined && error instanceof Error ? error.message : describeError(error);
  const text = raw.replace(/\s+/g, ' ').trim();
  return redactString(number === undefined ? text : `SQL Server error ${number}: ${text}`);
}

// ---------------------------------------------------------------------------------------------
// The sink
// ---------------------------------------------------------------------------------------------

export interface MssqlSinkOptions {
  connection: MssqlConnectionOptions;
  table: SqlTableName;
  /** Injected pool (tests, Lambda reuse); it is connected if needed but never closed here. Default: one built from `connection`. */
  pool?: MssqlPool;
  logger?: Logger;
  /** Immediate retries of a statement chosen as a deadlock victim (error 1205). Default 2. */
  deadlockRetries?: number;
  /** Wait before the first deadlock retry, doubled for each next one, plus jitter. Default 50 ms. */
  deadlockRetryDelayMs?: number;
}

type Chunk = readonly MessageRecord[];

interface ChunkOutcome {
  results: ItemResult[];
  /** Set when the store itself failed: later chunks of the batch are not attempted. */
  storeError?: string;
}

export class MssqlSink implements Sink {
  readonly name = 'mssql';
  private readonly pool: MssqlPool;
  private readonly ownsPool: boolean;
  private readonly table: SqlTableName;
  private readonly target: string;
  private readonly logger: Logger;
  private readonly deadlockRetries: number;
  private readonly deadlockRetryDelayMs: number;
  private readonly statements = new Map<number, string>();
  private readonly onPoolError = (error: unknown) => {
    // Every failed write reports its own error; this only keeps a stray pool event from being unhandled.
    this.logger.debug('store_pool_error', { store: this.name, error: describeMssqlError(error) });
  };
  private opened = false;
  private closed = false;

  constructor(options: MssqlSinkOptions) {
    this.logger = options.logger ?? silentLogger;
    this.table = options.table;
    this.target = describeMssqlTarget(options.connection, options.table);
    this.ownsPool = options.pool === undefined;
    this.pool = options.pool ?? createMssqlPool(options.connection);
    this.pool.on('error', this.onPoolError);
    this.deadlockRetries = options.deadlockRetries ?? 2;
    this.deadlockRetryDelayMs = options.deadlockRetryDelayMs ?? 50;
  }

  /** Connects and checks that the table has every column this version writes. */
  async open(): Promise<void> {
    try {
      if (!this.pool.connected) await this.pool.connect();
      await this.pool.request().query(`SELECT TOP (0) ${COLUMN_LIST}, stored_at FROM ${this.table.quoted};`);
      this.opened = true;
      this.logger.info('store_opened', { store: this.name, target: this.target });
    } catch (error) {
      const numbers = sqlErrorNumbers(error);
      let hint = '';
      if (numbers.includes(208)) hint = ` (the table does not exist: create it with \`aws-msg init-db\`)`;
      else if (numbers.includes(207))
        hint = ' (the table lacks columns this version writes: compare it with create_messages_table.sql)';
      throw new AppError('DEPENDENCY_UNAVAILABLE', `${this.target}: ${describeMssqlError(error)}${hint}`, {
        cause: error,
        retryable: isTransientMssqlError(error),
      });
    }
  }

  async write(batch: readonly MessageRecord[]): Promise<ItemResult[]> {
    if (batch.length === 0) return [];
    if (!this.opened || this.closed) return failAll(batch, `${this.name} is not open`, true);
    const results = new Map<string, ItemResult>();
    const writable: MessageRecord[] = [];
    for (const record of batch) {
      const problem = recordProblem(record);
      if (problem === undefined) writable.push(record);
      else results.set(record.key, { key: record.key, ok: false, error: problem, retryable: false });
    }
    // A stable key order makes concurrent writers take their key locks in the same order,
    // which makes deadlocks between them rarer.
    writable.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    let storeError: string | undefined;
    for (let start = 0; start < writable.length; start += MSSQL_ROWS_PER_STATEMENT) {
      const chunk = writable.slice(start, start + MSSQL_ROWS_PER_STATEMENT);
      const outcome =
        storeError === undefined
          ? await this.upsertIsolating(chunk)
          : { results: failAll(chunk, storeError, true) };
      storeError ??= outcome.storeError;
      for (const result of outcome.results) results.set(result.key, result);
    }
    return batch.map(
      (record) =>
        results.get(record.key) ?? { key: record.key, ok: false, error: 'no result', retryable: true },
    );
  }

  /**
   * Upserts a chunk; when the statement fails for a reason that may lie in its rows, splits the
   * chunk in halves and tries each, down to single rows. A failed statement wrote nothing, so
   * nothing is written twice, and the cost is about 2·log2(n) statements per bad row.
   * `failed` is the error of this chunk's statement when the caller already ran it.
   */
  private async upsertIsolating(chunk: Chunk, failed?: unknown): Promise<ChunkOutcome> {
    const error = failed ?? (await this.upsertWithDeadlockRetry(chunk));
    if (error === undefined) return { results: chunk.map((record) => ({ key: record.key, ok: true })) };
    const kind = classifyMssqlError(error);
    const reason = describeMssqlError(error);
    if (kind === 'transient') {
      this.logger.warn('store_write_failed', { store: this.name, records: chunk.length, error: reason });
      return { results: failAll(chunk, reason, true), storeError: reason };
    }
    if (chunk.length === 1) {
      const [record] = chunk as [MessageRecord];
      return { results: [{ key: record.key, ok: false, error: reason, retryable: kind !== 'record' }] };
    }
    this.logger.debug('store_write_isolating', { store: this.name, records: chunk.length, error: reason });
    const middle = Math.ceil(chunk.length / 2);
    const halves = [chunk.slice(0, middle), chunk.slice(middle)] as const;
    const errors: unknown[] = [];
    for (const half of halves) {
      const halfError = await this.upsertWithDeadlockRetry(half);
      if (halfError !== undefined && classifyMssqlError(halfError) === 'transient') {
        // The store failed meanwhile: what is known to be written stays ok, the rest is retried.
        const halfReason = describeMssqlError(halfError);
        this.logger.warn('store_write_failed', {
          store: this.name,
          records: chunk.length,
          error: halfReason,
        });
        const written = errors.length === 1 && errors[0] === undefined ? halves[0] : [];
        return {
          results: [
            ...written.map((record): ItemResult => ({ key: record.key, ok: true })),
            ...failAll(chunk.slice(written.length), halfReason, true),
          ],
          storeError: halfReason,
        };
      }
      errors.push(halfError);
    }
    // An unplaceable error that every part hits alike lies in the statement or the table, not in
    // a row: isolating further would cost up to 2n-1 statements for the same answer. Record
    // errors are still isolated, since each half may hold its own bad row and good rows must pass.
    const [number] = sqlErrorNumbers(error);
    const uniform =
      kind === 'unknown' &&
      number !== undefined &&
      errors.every((e) => e !== undefined && sqlErrorNumbers(e)[0] === number);
    if (uniform) return { results: failAll(chunk, reason, true) };
    const outcomes: ChunkOutcome[] = [];
    for (const [index, half] of halves.entries()) {
      const halfError = errors[index];
      const outcome =
        halfError === undefined
          ? { results: half.map((record): ItemResult => ({ key: record.key, ok: true })) }
          : await this.upsertIsolating(half, halfError);
      outcomes.push(outcome);
      if (outcome.storeError !== undefined) {
        const rest = halves[1];
        return {
          results: [
            ...outcomes.flatMap((o) => o.results),
            ...(index === 0 ? failAll(rest, outcome.storeError, true) : []),
          ],
          storeError: outcome.storeError,
        };
      }
    }
    return { results: outcomes.flatMap((o) => o.results) };
  }

  /** Runs the MERGE; returns the error it ended with, or undefined when it succeeded. */
  private async upsertWithDeadlockRetry(chunk: Chunk): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.upsert(chunk);
        return undefined;
      } catch (error) {
        if (attempt >= this.deadlockRetries || !sqlErrorNumbers(error).includes(1205)) return error;
        this.logger.debug('store_deadlock_retry', {
          store: this.name,
          records: chunk.length,
          attempt: attempt + 1,
        });
        const delayMs = this.deadlockRetryDelayMs * 2 ** attempt;
        if (delayMs > 0) await sleep(delayMs + Math.floor(Math.random() * delayMs));
      }
    }
  }

  private async upsert(chunk: Chunk): Promise<void> {
    const request = this.pool.request();
    chunk.forEach((record, row) => {
      for (const column of MESSAGE_COLUMNS)
        request.input(`${column.name}_${row}`, column.type, column.value(record));
    });
    let statement = this.statements.get(chunk.length);
    if (statement === undefined) {
      statement = buildMergeStatement(this.table, chunk.length);
      this.statements.set(chunk.length, statement);
    }
    await request.query(statement);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.removeListener('error', this.onPoolError);
    if (this.ownsPool) {
      try {
        await this.pool.close();
      } catch (error) {
        this.logger.debug('store_close_failed', { store: this.name, error: describeMssqlError(error) });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// init-db: the table and its indexes
// ---------------------------------------------------------------------------------------------

/** The scripting variable that `create_messages_table.sql` names the table by. */
export const TABLE_VARIABLE = 'MSSQL_TABLE';

export interface MessagesTableReport {
  /** `[dbo].[messages]`. */
  table: string;
  tableCreated: boolean;
  /** Indexes that did not exist before, by name (system-named ones for the keys included). */
  indexesCreated: string[];
  /** Batches the script was split into. */
  batches: number;
}

async function tableState(
  pool: MssqlPool,
  table: SqlTableName,
): Promise<{ exists: boolean; indexes: string[] }> {
  const request = pool.request();
  request.input('table', sql.NVarChar(300), table.quoted);
  const result = await request.query(
    "SELECT o.object_id, i.name FROM (SELECT OBJECT_ID(@table, N'U') AS object_id) AS o " +
      'LEFT JOIN sys.indexes AS i ON i.object_id = o.object_id AND i.name IS NOT NULL;',
  );
  const rows = result.recordset ?? [];
  return {
    exists: rows.some((row) => row['object_id'] !== null && row['object_id'] !== undefined),
    indexes: rows.flatMap((row) => (typeof row['name'] === 'string' ? [row['name']] : [])),
  };
}

/**
 * Applies `create_messages_table.sql` for `table`: the placeholder is filled with the quoted
 * name, the script split on GO, and every batch run in one transaction on one connection (so the
 * SET options of the first batch hold for the rest, and a failure leaves nothing half-made).
 */
export async function applyMessagesTableScript(
  pool: MssqlPool,
  table: SqlTableName,
  script: string,
  scriptName = 'create_messages_table.sql',
): Promise<MessagesTableReport> {
  const batches = splitSqlBatches(substituteSqlVariables(script, { [TABLE_VARIABLE]: table.quoted }));
  const before = await tableState(pool, table);
  const transaction = pool.transaction();
  await transaction.begin();
  try {
    for (const [index, batch] of batches.entries()) {
      try {
        await transaction.request().batch(batch.text);
      } catch (error) {
        throw new AppError(
          'MSSQL_ERROR',
          `${scriptName} batch ${index + 1} (line ${batch.startLine}): ${describeMssqlError(error)}`,
          { cause: error, retryable: isTransientMssqlError(error) },
        );
      }
    }
    await transaction.commit();
  } catch (error) {
    // The server may already have rolled back (some errors abort the transaction); nothing to add then.
    await transaction.rollback().catch(() => undefined);
    throw error;
  }
  const after = await tableState(pool, table);
  return {
    table: table.quoted,
    tableCreated: !before.exists && after.exists,
    indexesCreated: after.indexes.filter((name) => !before.indexes.includes(name)).sort(),
    batches: batches.length,
  };
}
