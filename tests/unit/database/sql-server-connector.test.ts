import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sql from 'mssql';
import type { ISqlType } from 'mssql';
import { parseSqlTableName } from '../../../src/database/sql-identifiers.js';
import {
  MESSAGE_COLUMNS,
  MSSQL_MAX_PARAMETERS,
  MSSQL_ROWS_PER_STATEMENT,
  MssqlSink,
  applyMessagesTableScript,
  buildMergeStatement,
  classifyMssqlError,
  describeMssqlTarget,
  recordProblem,
  type MssqlConnectionOptions,
  type MssqlErrorKind,
} from '../../../src/database/sql-server-connector.js';
import type { ItemResult } from '../../../src/database/sink.js';
import { AppError } from '../../../src/utils/errors.js';
import { REPO_ROOT } from '../../helpers/cli.js';
import { messageRecord, messageRecords } from '../../helpers/records.js';
import { freePort } from '../../helpers/services.js';
import { FakeMssqlServer, connectionError, serverError } from '../../helpers/fake-mssql.js';

const TABLE = parseSqlTableName('dbo.messages');
const CONNECTION: MssqlConnectionOptions = {
  server: 'db.example.com',
  port: 1433,
  database: 'shop',
  user: 'app',
  password: 'Pa55-w0rd-never-shown',
  encrypt: true,
  trustServerCertificate: false,
  appName: 'aws-msg',
  poolMax: 4,
  connectTimeoutMs: 2000,
  requestTimeoutMs: 5000,
};
const SCRIPT = readFileSync(join(REPO_ROOT, 'create_messages_table.sql'), 'utf8');

async function openSink(
  server = new FakeMssqlServer(),
): Promise<{ sink: MssqlSink; server: FakeMssqlServer }> {
  const sink = new MssqlSink({ connection: CONNECTION, table: TABLE, pool: server, deadlockRetryDelayMs: 0 });
  await sink.open();
  return { sink, server };
}

function byKey(results: readonly ItemResult[]): Map<string, ItemResult> {
  return new Map(results.map((r) => [r.key, r]));
}

/** The ISJSON check of the real table, applied by the fake server. */
function refuseInvalidJson(row: Record<string, unknown>): Error | undefined {
  try {
    const parsed: unknown = JSON.parse(String(row['body']));
    if (typeof parsed === 'object' && parsed !== null) return undefined;
  } catch {
    // falls through to the constraint error
  }
  return serverError(
    547,
    'The INSERT statement conflicted with the CHECK constraint "CK__messages__body__5EBF139D". ' +
      'The conflict occurred in database "shop", table "dbo.messages", column \'body\'.',
  );
}

/** `NVARCHAR(450)`, `DATETIME2(3)`, `INT`: a parameter type as DDL spells it. */
function ddlTypeOf(type: ISqlType): string {
  const t = type as ISqlType & { length?: number; scale?: number };
  if (t.type === sql.NVarChar)
    return `NVARCHAR(${t.length !== undefined && t.length > 4000 ? 'MAX' : t.length})`;
  if (t.type === sql.DateTime2) return `DATETIME2(${t.scale})`;
  if (t.type === sql.Int) return 'INT';
  return 'unexpected';
}

/** `size` valid records, except unparseable bodies at `positions`; `poison` holds their keys. */
function withBadBodies(size: number, positions: readonly number[]) {
  const batch = messageRecords(size);
  const poison = positions.map((i) => {
    const bad = messageRecord({ rawBody: 'not json' });
    batch[i] = bad;
    return bad.key;
  });
  return { batch, poison };
}

/** The keys of the records that failed, sorted. */
function failedKeys(results: readonly ItemResult[]): string[] {
  return results
    .filter((r) => !r.ok)
    .map((r) => r.key)
    .sort();
}

describe('the upsert statement', () => {
  it('is one MERGE WITH (HOLDLOCK) on the key, with every value a parameter', () => {
    // Act
    const text = buildMergeStatement(TABLE, 1);

    // Assess
    expect(text).toBe(
      [
        'MERGE INTO [dbo].[messages] WITH (HOLDLOCK) AS t',
        'USING (VALUES (@message_key_0, @message_id_0, @body_0, @group_id_0, @sequence_number_0, @deduplication_id_0, ' +
          '@sent_at_0, @received_at_0, @first_received_at_0, @receive_count_0, @attributes_0, @message_attributes_0, ' +
          '@archive_key_0)) AS s (message_key, message_id, body, group_id, sequence_number, deduplication_id, sent_at, ' +
          'received_at, first_received_at, receive_count, attributes, message_attributes, archive_key)',
        'ON t.message_key = s.message_key',
        'WHEN MATCHED THEN UPDATE SET message_id = s.message_id, body = s.body, group_id = s.group_id, ' +
          'sequence_number = s.sequence_number, deduplication_id = s.deduplication_id, sent_at = s.sent_at, ' +
          'received_at = s.received_at, first_received_at = s.first_received_at, receive_count = s.receive_count, ' +
          'attributes = s.attributes, message_attributes = s.message_attributes, archive_key = s.archive_key, ' +
          'stored_at = SYSUTCDATETIME()',
        'WHEN NOT MATCHED BY TARGET THEN INSERT (message_key, message_id, body, group_id, sequence_number, ' +
          'deduplication_id, sent_at, received_at, first_received_at, receive_count, attributes, message_attributes, ' +
          'archive_key, stored_at)',
        'VALUES (s.message_key, s.message_id, s.body, s.group_id, s.sequence_number, s.deduplication_id, s.sent_at, ' +
          's.received_at, s.first_received_at, s.receive_count, s.attributes, s.message_attributes, s.archive_key, ' +
          'SYSUTCDATETIME());',
      ].join('\n'),
    );
  });

  it('gives every row its own parameters', () => {
    // Act
    const text = buildMergeStatement(parseSqlTableName('audit.sqs_messages'), 3);

    // Assess
    expect(text.startsWith('MERGE INTO [audit].[sqs_messages] WITH (HOLDLOCK) AS t')).toBe(true);
    expect(text).toContain('(@message_key_2, @message_id_2, @body_2,');
    expect(text.match(/@\w+_\d+/g)).toHaveLength(3 * MESSAGE_COLUMNS.length);
  });

  it('declares each parameter with exactly the type of its column in create_messages_table.sql', () => {
    // Prepare: the column definitions of the CREATE TABLE in the shipped script
    const ddl = new Map(
      [...SCRIPT.matchAll(/^\s+(\w+)\s+(NVARCHAR\((?:\d+|MAX)\)|DATETIME2\(\d\)|INT)[\s,]/gm)].map((m) => [
        m[1],
        m[2],
      ]),
    );

    // Act
    const declared = MESSAGE_COLUMNS.map((c) => [c.name, ddlTypeOf(c.type)]);

    // Assess
    expect(declared).toEqual([
      ['message_key', 'NVARCHAR(450)'],
      ['message_id', 'NVARCHAR(128)'],
      ['body', 'NVARCHAR(MAX)'],
      ['group_id', 'NVARCHAR(128)'],
      ['sequence_number', 'NVARCHAR(128)'],
      ['deduplication_id', 'NVARCHAR(128)'],
      ['sent_at', 'DATETIME2(3)'],
      ['received_at', 'DATETIME2(3)'],
      ['first_received_at', 'DATETIME2(3)'],
      ['receive_count', 'INT'],
      ['attributes', 'NVARCHAR(MAX)'],
      ['message_attributes', 'NVARCHAR(MAX)'],
      ['archive_key', 'NVARCHAR(1024)'],
    ]);
    for (const [name, type] of declared) expect(ddl.get(name as string)).toBe(type);
  });

  it('binds the raw body, attributes as JSON text, dates as Dates and NULL for what the message lacks', async () => {
    // Prepare
    const { sink, server } = await openSink();
    const fifo = messageRecord({
      rawBody: '{ "type" : "order",  "id": 7 }',
      body: { type: 'order', id: 7 },
      groupId: 'customer-1',
      sequenceNumber: '18849496460467696128',
      deduplicationId: 'dedup-1',
      firstReceivedAt: new Date('2026-03-01T10:00:00.999Z'),
      archiveKey: 'archive/2026/03/01/k.json',
      receiveCount: 3,
    });
    const plain = messageRecord();

    // Act
    await sink.write([fifo, plain]);

    // Assess
    const [statement] = server.merges;
    const rows = new Map(statement?.rows.map((row) => [row['message_key'], row]));
    expect(rows.get(fifo.key)).toEqual({
      message_key: fifo.key,
      message_id: fifo.messageId,
      body: '{ "type" : "order",  "id": 7 }',
      group_id: 'customer-1',
      sequence_number: '18849496460467696128',
      deduplication_id: 'dedup-1',
      sent_at: fifo.sentAt,
      received_at: fifo.receivedAt,
      first_received_at: fifo.firstReceivedAt,
      receive_count: 3,
      attributes: JSON.stringify(fifo.attributes),
      message_attributes: '{"source":{"dataType":"String","value":"unit-test"}}',
      archive_key: 'archive/2026/03/01/k.json',
    });
    const plainRow = rows.get(plain.key);
    expect([plainRow?.['group_id'], plainRow?.['first_received_at'], plainRow?.['archive_key']]).toEqual([
      null,
      null,
      null,
    ]);
    expect(statement?.params.get('body_0')?.type).toEqual({ type: sql.NVarChar, length: sql.MAX });
  });

  it('never puts message data into the statement text', async () => {
    // Prepare
    const { sink, server } = await openSink();
    const hostile = messageRecord({
      key: "x'); DROP TABLE dbo.messages; --",
      rawBody: '{"note":"\'; DELETE FROM dbo.messages; --"}',
    });

    // Act
    const [result] = await sink.write([hostile]);

    // Assess
    expect(result).toEqual({ key: hostile.key, ok: true });
    const [statement] = server.merges;
    expect(statement?.text).not.toContain('DROP');
    expect(statement?.text).not.toContain('DELETE');
    expect(statement?.params.get('message_key_0')?.value).toBe(hostile.key);
  });
});

describe('chunking at the 2,100-parameter limit', () => {
  it('fits the most rows per statement under the limit', () => {
    expect(MSSQL_ROWS_PER_STATEMENT).toBe(161);
    expect(MSSQL_ROWS_PER_STATEMENT * MESSAGE_COLUMNS.length).toBeLessThanOrEqual(MSSQL_MAX_PARAMETERS - 2);
    expect((MSSQL_ROWS_PER_STATEMENT + 1) * MESSAGE_COLUMNS.length).toBeGreaterThan(MSSQL_MAX_PARAMETERS - 2);
  });

  it('splits a large batch into statements that each stay under the limit, and stores every record', async () => {
    // Prepare
    const { sink, server } = await openSink();
    const batch = messageRecords(400);

    // Act
    const results = await sink.write(batch);

    // Assess
    expect(server.merges.map((s) => s.rows.length)).toEqual([161, 161, 78]);
    for (const statement of server.merges)
      expect(statement.params.size).toBeLessThanOrEqual(MSSQL_MAX_PARAMETERS);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(results.map((r) => r.key)).toEqual(batch.map((r) => r.key));
    expect(server.table.size).toBe(400);
  });

  it('writes a batch within the limit as one statement', async () => {
    // Prepare
    const { sink, server } = await openSink();

    // Act
    await sink.write(messageRecords(100));

    // Assess
    expect(server.merges).toHaveLength(1);
    expect(server.table.size).toBe(100);
  });
});

describe('isolating the rows at fault', () => {
  it('fails only the message whose body the ISJSON check refuses; its neighbours are stored', async () => {
    // Prepare
    const server = new FakeMssqlServer();
    server.refuseRow = refuseInvalidJson;
    const { sink } = await openSink(server);
    const batch = messageRecords(20);
    const poison = messageRecord({ rawBody: '{"truncated":' });
    batch.splice(7, 0, poison);

    // Act
    const results = byKey(await sink.write(batch));

    // Assess
    const failed = [...results.values()].filter((r) => !r.ok);
    expect(failed).toEqual([
      {
        key: poison.key,
        ok: false,
        error: expect.stringContaining('SQL Server error 547'),
        retryable: false,
      },
    ]);
    expect(server.table.size).toBe(20);
    expect(server.table.has(poison.key)).toBe(false);
    // Bisection: about 2·log2(21) statements, far fewer than one per row.
    expect(server.merges.length).toBeLessThan(15);
  });

  it('finds several bad rows in one batch', async () => {
    // Prepare
    const server = new FakeMssqlServer();
    server.refuseRow = refuseInvalidJson;
    const { sink } = await openSink(server);
    const { batch, poison } = withBadBodies(100, [3, 50, 99]);

    // Act
    const results = await sink.write(batch);

    // Assess
    expect(failedKeys(results)).toEqual([...poison].sort());
    expect(results).toHaveLength(100);
    expect(server.table.size).toBe(97);
  });

  it('refuses values the columns cannot hold before sending them, and stores the rest in one statement', async () => {
    // Prepare
    const { sink, server } = await openSink();
    const longKey = messageRecord({ key: 'k'.repeat(451) });
    const longArchiveKey = messageRecord({ archiveKey: `archive/${'a'.repeat(1100)}` });
    const badDate = messageRecord({ sentAt: new Date(Number.NaN) });
    const good = messageRecords(5);

    // Act
    const results = byKey(await sink.write([longKey, ...good, longArchiveKey, badDate]));

    // Assess
    expect(results.get(longKey.key)).toEqual({
      key: longKey.key,
      ok: false,
      error: 'message_key is 451 characters long; the column holds at most 450',
      retryable: false,
    });
    expect(results.get(longArchiveKey.key)).toMatchObject({ ok: false, retryable: false });
    expect(results.get(badDate.key)).toMatchObject({
      ok: false,
      retryable: false,
      error: expect.stringContaining('sent_at'),
    });
    expect(server.merges).toHaveLength(1);
    expect(server.table.size).toBe(5);
  });

  it('accepts every date DATETIME2 holds, from year 1 to 9999, and refuses the rest', () => {
    // Prepare
    const at = (iso: string) => recordProblem(messageRecord({ sentAt: new Date(iso) }));

    // Act / Assess
    expect(at('0001-01-01T00:00:00.000Z')).toBeUndefined();
    expect(at('1850-06-01T12:00:00.000Z')).toBeUndefined();
    expect(at('9999-12-31T23:59:59.999Z')).toBeUndefined();
    expect(at('-000001-12-31T23:59:59.999Z')).toBe('sent_at is not a date SQL Server can store');
    expect(at('+010000-01-01T00:00:00.000Z')).toBe('sent_at is not a date SQL Server can store');
  });

  it('isolates a row that raises an error it cannot place, but leaves that row to be retried', async () => {
    // Prepare
    const server = new FakeMssqlServer();
    const odd = messageRecord();
    server.refuseRow = (row) =>
      row['message_key'] === odd.key ? serverError(50_000, 'raised by a trigger') : undefined;
    const { sink } = await openSink(server);

    // Act
    const results = byKey(await sink.write([...messageRecords(6), odd, ...messageRecords(6)]));

    // Assess
    expect(results.get(odd.key)).toMatchObject({ ok: false, retryable: true });
    expect(server.table.size).toBe(12);
  });
});

describe('errors that every row hits', () => {
  it('stop isolating when both halves fail with the same unplaceable error as the batch', async () => {
    // Prepare: a trigger that refuses every row (up to 2n-1 statements if isolated to single rows)
    const server = new FakeMssqlServer();
    server.refuseRow = () => serverError(50_000, 'writes are disabled by a trigger');
    const { sink } = await openSink(server);

    // Act
    const results = await sink.write(messageRecords(64));

    // Assess: the batch and its two halves, then every message is left to be retried
    expect(server.merges).toHaveLength(3);
    expect(results).toHaveLength(64);
    expect(results.every((r) => !r.ok && r.retryable && /50000/.test(r.error))).toBe(true);
  });

  it('still isolate record errors, which each half may hold its own of', async () => {
    // Prepare: one bad body in each half
    const server = new FakeMssqlServer();
    server.refuseRow = refuseInvalidJson;
    const { sink } = await openSink(server);
    const { batch, poison } = withBadBodies(8, [1, 6]);

    // Act
    const results = await sink.write(batch);

    // Assess
    expect(failedKeys(results)).toEqual([...poison].sort());
    expect(server.table.size).toBe(6);
  });
});

describe('keys that end with a space', () => {
  it('are refused for good before they reach SQL Server, which would merge "A1 " into "A1"', async () => {
    // Prepare
    const { sink, server } = await openSink();
    const plain = messageRecord({ key: 'A1' });
    const padded = messageRecord({ key: 'A1 ' });

    // Act
    const results = byKey(await sink.write([plain, padded]));

    // Assess
    expect(results.get('A1')).toEqual({ key: 'A1', ok: true });
    expect(results.get('A1 ')).toMatchObject({
      ok: false,
      retryable: false,
      error: expect.stringContaining('message_key ends with a space'),
    });
    expect([...server.table.keys()]).toEqual(['A1']);
  });

  it('are refused by recordProblem; other whitespace at the end is a different key to SQL Server', () => {
    expect(recordProblem(messageRecord({ key: 'order-7  ' }))).toMatch(/ends with a space/);
    expect(recordProblem(messageRecord({ key: ' order-7' }))).toBeUndefined();
    expect(recordProblem(messageRecord({ key: 'order-7\t' }))).toBeUndefined();
  });
});

describe('store failures fail the batch as retryable, without isolating rows', () => {
  it.each([
    ['a connection error', () => connectionError('ESOCKET')],
    [
      'a request timeout',
      () => new sql.RequestError('Timeout: Request failed to complete in 30000ms', 'ETIMEOUT'),
    ],
    [
      'an Azure failover',
      () => serverError(40613, 'Database shop on server db is not currently available.', 20),
    ],
    ['a missing table', () => serverError(208, "Invalid object name 'dbo.messages'.")],
  ])('%s', async (_label, makeError) => {
    // Prepare
    const { sink, server } = await openSink();
    server.failNext.push(makeError());
    const batch = messageRecords(10);

    // Act
    const results = await sink.write(batch);

    // Assess
    expect(results).toHaveLength(10);
    expect(results.every((r) => !r.ok && r.retryable)).toBe(true);
    expect(server.merges).toHaveLength(1);
    expect(server.table.size).toBe(0);
  });

  it('does not try the later statements of a batch once the store has failed', async () => {
    // Prepare
    const { sink, server } = await openSink();
    server.failNext.push(connectionError('ECONNCLOSED'));

    // Act
    const results = await sink.write(messageRecords(400));

    // Assess
    expect(server.merges).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.retryable)).toHaveLength(400);
  });

  it('retries a deadlock victim at once, and stores the batch', async () => {
    // Prepare
    const { sink, server } = await openSink();
    server.failNext.push(
      serverError(1205, 'Transaction was deadlocked on lock resources with another process', 13),
    );

    // Act
    const results = await sink.write(messageRecords(10));

    // Assess
    expect(results.every((r) => r.ok)).toBe(true);
    expect(server.merges).toHaveLength(2);
    expect(server.table.size).toBe(10);
  });

  it('gives up on a deadlock after its retries and leaves the batch to be retried later', async () => {
    // Prepare
    const { sink, server } = await openSink();
    for (let i = 0; i < 3; i++) server.failNext.push(serverError(1205, 'deadlocked', 13));

    // Act
    const results = await sink.write(messageRecords(4));

    // Assess
    expect(server.merges).toHaveLength(3);
    expect(results.every((r) => !r.ok && r.retryable && /1205/.test(r.error))).toBe(true);
  });

  it('answers for every record when not open, without touching the server', async () => {
    // Prepare
    const server = new FakeMssqlServer();
    const sink = new MssqlSink({ connection: CONNECTION, table: TABLE, pool: server });

    // Act
    const results = await sink.write(messageRecords(3));

    // Assess
    expect(results.every((r) => !r.ok && r.retryable)).toBe(true);
    expect(server.statements).toHaveLength(0);
  });
});

describe('error classification', () => {
  const preceded = Object.assign(serverError(3621, 'The statement has been terminated.', 0), {
    precedingErrors: [serverError(2628, "String or binary data would be truncated in table 'dbo.messages'")],
  });
  it.each<[string, MssqlErrorKind, unknown]>([
    ['deadlock victim 1205', 'transient', serverError(1205, 'deadlocked', 13)],
    ['lock request timeout 1222', 'transient', serverError(1222, 'Lock request time out period exceeded.')],
    ['Azure service busy 40501', 'transient', serverError(40501, 'The service is currently busy.', 20)],
    [
      'Azure error processing request 40197',
      'transient',
      serverError(40197, 'The service has encountered an error'),
    ],
    ['Azure database unavailable 40613', 'transient', serverError(40613, 'not currently available')],
    ['Azure not enough resources 49918', 'transient', serverError(49918, 'Cannot process request.')],
    ['Azure 49919', 'transient', serverError(49919, 'Cannot process create or update request.')],
    ['Azure 49920', 'transient', serverError(49920, 'Too many operations in progress.')],
    [
      'transaction log full 9002',
      'transient',
      serverError(9002, 'The transaction log for database is full', 17),
    ],
    ['table missing 208', 'transient', serverError(208, "Invalid object name 'dbo.messages'.")],
    ['permission denied 229', 'transient', serverError(229, 'The INSERT permission was denied')],
    ['unknown error of severity 20', 'transient', serverError(99_999, 'fatal', 20)],
    ['socket error', 'transient', connectionError('ESOCKET')],
    [
      'connection closed',
      'transient',
      new sql.RequestError('Connection closed before request completed.', 'ECONNCLOSED'),
    ],
    ['request timeout', 'transient', new sql.RequestError('Timeout: Request failed to complete', 'ETIMEOUT')],
    ['pool closed', 'transient', new sql.ConnectionError('Connection is closing', 'ENOTOPEN')],
    ['login failed', 'transient', new sql.ConnectionError("Login failed for user 'app'.", 'ELOGIN')],
    ['a Node socket error', 'transient', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['CHECK constraint (ISJSON) 547', 'record', serverError(547, 'conflicted with the CHECK constraint')],
    ['primary key violation 2627', 'record', serverError(2627, 'Violation of PRIMARY KEY constraint')],
    ['unique index 2601', 'record', serverError(2601, 'Cannot insert duplicate key row')],
    ['date conversion 241', 'record', serverError(241, 'Conversion failed when converting date')],
    ['out-of-range date 242', 'record', serverError(242, 'out-of-range value')],
    [
      'int conversion 245',
      'record',
      serverError(245, 'Conversion failed when converting the nvarchar value'),
    ],
    ['type conversion 8114', 'record', serverError(8114, 'Error converting data type nvarchar to int.')],
    ['arithmetic overflow 8115', 'record', serverError(8115, 'Arithmetic overflow error')],
    ['truncation 2628', 'record', serverError(2628, 'String or binary data would be truncated')],
    [
      'truncation (old servers) 8152',
      'record',
      serverError(8152, 'String or binary data would be truncated.'),
    ],
    ['NULL into NOT NULL 515', 'record', serverError(515, 'Cannot insert the value NULL')],
    [
      'a parameter the driver refuses',
      'record',
      Object.assign(new sql.RequestError("Validation failed for parameter 'sent_at_0'. Invalid date."), {
        code: 'EPARAM',
      }),
    ],
    ['truncation reported before "terminated"', 'record', preceded],
    [
      'no free pooled connection in time (tarn TimeoutError)',
      'transient',
      Object.assign(new (class TimeoutError extends Error {})('operation timed out for an unknown reason'), {
        message: 'Failed to acquire a connection from the pool: operation timed out for an unknown reason',
      }),
    ],
    [
      'a pool acquire timeout wrapped by the request',
      'transient',
      Object.assign(new sql.RequestError('Failed to acquire a connection from the pool: timed out'), {
        code: undefined,
      }),
    ],
    ['an unknown server error', 'unknown', serverError(50_000, 'custom error')],
    ['a plain bug', 'unknown', new TypeError('x is undefined')],
  ])('%s -> %s', (_label, expected, error) => {
    expect(classifyMssqlError(error)).toBe(expected);
  });
});

describe('open and close', () => {
  it('says how to create a missing table', async () => {
    // Prepare
    const server = new FakeMssqlServer();
    server.tableExists = false;
    const sink = new MssqlSink({ connection: CONNECTION, table: TABLE, pool: server });

    // Act
    const error = await sink.open().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('DEPENDENCY_UNAVAILABLE');
    expect((error as AppError).exitCode).toBe(3);
    expect((error as AppError).message).toBe(
      "SQL Server db.example.com:1433/shop [dbo].[messages]: SQL Server error 208: Invalid object name 'dbo.messages'. " +
        '(the table does not exist: create it with `aws-msg init-db`)',
    );
  });

  it('reports an unreachable server as DEPENDENCY_UNAVAILABLE, naming the server but not the password', async () => {
    // Prepare: a port nothing listens on, and the real driver
    const port = await freePort();
    const connection = { ...CONNECTION, server: '127.0.0.1', port, connectTimeoutMs: 3000 };
    const sink = new MssqlSink({ connection, table: TABLE });

    // Act
    const error = await sink.open().catch((e: unknown) => e);
    await sink.close();

    // Assess
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('DEPENDENCY_UNAVAILABLE');
    expect((error as AppError).retryable).toBe(true);
    expect((error as AppError).message).toMatch(
      new RegExp(`^SQL Server 127\\.0\\.0\\.1:${port}/shop \\[dbo\\]\\.\\[messages\\]: `),
    );
    expect((error as AppError).message).not.toContain(CONNECTION.password);
  });

  it('closes a pool it built, once; never an injected one; and stops listening to it', async () => {
    // Prepare
    const { sink, server } = await openSink();

    // Act
    await sink.close();
    await sink.close();
    const afterClose = await sink.write(messageRecords(1));

    // Assess
    expect(server.closed).toBe(0);
    expect(server.listenerCount()).toBe(0);
    expect(afterClose[0]).toMatchObject({ ok: false, retryable: true });
  });

  it('describes where it writes without credentials', () => {
    expect(describeMssqlTarget(CONNECTION, TABLE)).toBe(
      'SQL Server db.example.com:1433/shop [dbo].[messages]',
    );
    expect(describeMssqlTarget({ ...CONNECTION, port: undefined, instanceName: 'SQLEXPRESS' })).toBe(
      'SQL Server db.example.com\\SQLEXPRESS/shop',
    );
  });
});

describe('applying create_messages_table.sql', () => {
  it('runs every batch with the table filled in, in one transaction, and reports what it created', async () => {
    // Prepare
    const server = new FakeMssqlServer();
    server.tableExists = false;
    server.connected = true;

    // Act
    const report = await applyMessagesTableScript(server, parseSqlTableName('audit.sqs_messages'), SCRIPT);

    // Assess
    expect(server.transactionEvents).toEqual(['begin', 'commit']);
    expect(server.batches).toHaveLength(5);
    expect(server.batches.every((b) => b.inTransaction)).toBe(true);
    expect(server.batches.some((b) => b.text.includes('$('))).toBe(false);
    expect(server.batches[1]?.text).toContain("IF OBJECT_ID(N'[audit].[sqs_messages]', N'U') IS NULL");
    expect(server.batches[1]?.text).toContain('CREATE TABLE [audit].[sqs_messages] (');
    expect(report).toEqual({
      table: '[audit].[sqs_messages]',
      tableCreated: true,
      indexesCreated: [
        'IX_group_sequence',
        'IX_message_id',
        'IX_sent_at',
        'PK__messages__1',
        'UQ__messages__2',
      ],
      batches: 5,
    });
  });

  it('rolls back and names the batch and line when one fails', async () => {
    // Prepare
    const server = new FakeMssqlServer();
    server.connected = true;
    server.failBatch = (text) =>
      text.includes('CREATE TABLE')
        ? serverError(262, "CREATE TABLE permission denied in database 'shop'.", 14)
        : undefined;

    // Act
    const error = await applyMessagesTableScript(server, TABLE, SCRIPT).catch((e: unknown) => e);

    // Assess
    expect(server.transactionEvents).toEqual(['begin', 'rollback']);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('MSSQL_ERROR');
    expect((error as AppError).message).toMatch(
      /^create_messages_table\.sql batch 2 \(line \d+\): SQL Server error 262: CREATE TABLE permission denied/,
    );
  });
});
