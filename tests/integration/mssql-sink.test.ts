/**
 * The SQL Server sink, init-db and process-sqs against a real SQL Server (2016 or later; the
 * docker-compose.yml stack runs 2022). These suites run only when MSSQL_URL is set; otherwise
 * they are skipped and the global setup prints one line saying so. Each run works in tables of
 * its own (dbo.awsmsg_<random>...) and drops them at the end.
 */
import { readFileSync } from 'node:fs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { ConnectionPool } from 'mssql';
import { MESSAGES_TABLE_SCRIPT } from '../../src/config/init-db-settings.js';
import { resolveMssqlSettings, type MssqlSettings } from '../../src/config/mssql-settings.js';
import { parseSqlTableName, type SqlTableName } from '../../src/database/sql-identifiers.js';
import {
  MSSQL_ROWS_PER_STATEMENT,
  MssqlSink,
  applyMessagesTableScript,
  createMssqlPool,
} from '../../src/database/sql-server-connector.js';
import type { ItemResult, MessageRecord } from '../../src/database/sink.js';
import type { InitDbSummary } from '../../src/services/init-db.js';
import { processSqs } from '../../src/services/process-sqs.js';
import { AppError } from '../../src/utils/errors.js';
import { silentLogger } from '../../src/utils/logger.js';
import { createQueue, testSqsClient, uniqueName } from '../helpers/aws.js';
import { runCli } from '../helpers/cli.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';
import { messageRecord, messageRecords } from '../helpers/records.js';
import { freePort } from '../helpers/services.js';
import {
  ORDER_SCHEMA,
  mixedBodies,
  processEnv,
  processSettings,
  queueDepth,
  sendBodies,
} from '../helpers/sqs-fixtures.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const SCRIPT = readFileSync(MESSAGES_TABLE_SCRIPT, 'utf8');

interface StoredRow {
  message_key: string;
  message_id: string;
  body: string;
  group_id: string | null;
  sequence_number: string | null;
  sent_at: Date;
  received_at: Date;
  stored_at: Date;
  receive_count: number;
  attributes: string;
  message_attributes: string;
  archive_key: string | null;
}

/** A fresh table name in dbo, valid as an identifier. */
function freshTable(prefix = 'awsmsg'): SqlTableName {
  return parseSqlTableName(`dbo.${uniqueName(prefix).replace(/-/g, '_')}`);
}

/** The SQL Server settings MSSQL_URL describes, for `table`. */
function settingsFor(table: SqlTableName): MssqlSettings {
  const problems: string[] = [];
  const settings = resolveMssqlSettings(
    { flags: {}, env: { MSSQL_URL: requirePeer('mssql'), MSSQL_TABLE: table.display }, dotenv: {} },
    problems,
  );
  if (!settings) throw new Error(`MSSQL_URL does not configure SQL Server: ${problems.join('; ')}`);
  return settings;
}

async function rowsOf(pool: ConnectionPool, table: SqlTableName): Promise<StoredRow[]> {
  const result = await pool.request().query<StoredRow>(`SELECT * FROM ${table.quoted} ORDER BY message_key;`);
  return result.recordset;
}

/** Rows in the table, and distinct keys among them. */
async function countOf(pool: ConnectionPool, table: SqlTableName): Promise<{ rows: number; keys: number }> {
  const result = await pool
    .request()
    .query<{ row_count: number; key_count: number }>(
      `SELECT COUNT(*) AS row_count, COUNT(DISTINCT message_key) AS key_count FROM ${table.quoted};`,
    );
  const [counts] = result.recordset;
  return { rows: counts?.row_count ?? -1, keys: counts?.key_count ?? -1 };
}

function failures(results: readonly ItemResult[]): ItemResult[] {
  return results.filter((r) => !r.ok);
}

describeWithPeers(['mssql'], 'SQL Server: init-db and the sink against a real server', () => {
  const tables: SqlTableName[] = [];
  let admin: ConnectionPool;

  /** A new table, created by the shipped script, dropped after the suite. */
  async function preparedTable(): Promise<SqlTableName> {
    const table = freshTable();
    tables.push(table);
    await applyMessagesTableScript(admin, table, SCRIPT);
    return table;
  }

  async function openSink(table: SqlTableName, overrides: Partial<MssqlSettings['connection']> = {}) {
    const settings = settingsFor(table);
    const sink = new MssqlSink({
      connection: { ...settings.connection, ...overrides },
      table,
      logger: silentLogger,
    });
    await sink.open();
    return sink;
  }

  beforeAll(async () => {
    admin = createMssqlPool(settingsFor(parseSqlTableName('dbo.unused')).connection);
    await admin.connect();
  });

  afterAll(async () => {
    for (const table of tables) await admin.request().batch(`DROP TABLE IF EXISTS ${table.quoted};`);
    await admin.close();
  });

  it('init-db creates the table and its indexes, and a second run creates nothing', async () => {
    // Prepare
    const table = freshTable();
    tables.push(table);
    const env = { MSSQL_URL: requirePeer('mssql'), MSSQL_TABLE: table.display };

    // Act
    const first = await runCli(['init-db', '--json'], { env });
    const second = await runCli(['init-db', '--json'], { env });

    // Assess
    expect([first.code, second.code]).toEqual([0, 0]);
    const one = JSON.parse(first.stdout) as InitDbSummary;
    const two = JSON.parse(second.stdout) as InitDbSummary;
    expect(one.mssql).toMatchObject({ table: table.quoted, tableCreated: true, batches: 5 });
    expect(one.mssql?.indexesCreated).toEqual(
      expect.arrayContaining(['IX_group_sequence', 'IX_message_id', 'IX_sent_at']),
    );
    expect(two.mssql).toMatchObject({ tableCreated: false, indexesCreated: [] });

    const indexes = await admin
      .request()
      .input('table', table.quoted)
      .query<{ name: string; is_primary_key: boolean; has_filter: boolean }>(
        "SELECT name, is_primary_key, has_filter FROM sys.indexes WHERE object_id = OBJECT_ID(@table, N'U') AND name IS NOT NULL;",
      );
    const names = indexes.recordset.map((i) => i.name);
    for (const name of ['IX_sent_at', 'IX_message_id', 'IX_group_sequence']) {
      expect(names.filter((n) => n === name)).toHaveLength(1);
    }
    expect(indexes.recordset.filter((i) => i.is_primary_key)).toHaveLength(1);
    expect(indexes.recordset.find((i) => i.name === 'IX_group_sequence')?.has_filter).toBe(true);
    const checks = await admin
      .request()
      .input('table', table.quoted)
      .query<{ definition: string }>(
        "SELECT definition FROM sys.check_constraints WHERE parent_object_id = OBJECT_ID(@table, N'U');",
      );
    expect(checks.recordset.map((c) => c.definition.replace(/[[\]()\s]/g, '').toLowerCase()).sort()).toEqual([
      'isjsonattributes=1',
      'isjsonbody=1',
      'isjsonmessage_attributes=1',
    ]);
  });

  it('stores a batch, and the same batch again, as one row per key carrying the latest delivery', async () => {
    // Prepare
    const table = await preparedTable();
    const sink = await openSink(table);
    const batch = messageRecords(5, { groupId: 'customer-1', sequenceNumber: '18849496460467696128' });
    batch[0] = { ...(batch[0] as MessageRecord), rawBody: '{ "spaced" :  true }', body: { spaced: true } };
    const redelivery = batch.map((r) => ({
      ...r,
      receiveCount: 2,
      receivedAt: new Date('2026-03-01T11:00:00.789Z'),
    }));

    // Act
    const first = await sink.write(batch);
    const second = await sink.write(redelivery);
    await sink.close();

    // Assess
    expect(failures([...first, ...second])).toEqual([]);
    expect(await countOf(admin, table)).toEqual({ rows: 5, keys: 5 });
    const rows = new Map((await rowsOf(admin, table)).map((row) => [row.message_key, row]));
    const spaced = rows.get(batch[0]?.key as string);
    expect(spaced?.body).toBe('{ "spaced" :  true }');
    expect(spaced?.receive_count).toBe(2);
    expect(spaced?.received_at.toISOString()).toBe('2026-03-01T11:00:00.789Z');
    expect(spaced?.sent_at.toISOString()).toBe('2026-03-01T10:00:00.123Z');
    expect(spaced?.group_id).toBe('customer-1');
    expect(spaced?.sequence_number).toBe('18849496460467696128');
    expect(spaced?.archive_key).toBeNull();
    expect(JSON.parse(spaced?.attributes ?? '')).toEqual(batch[0]?.attributes);
    expect(JSON.parse(spaced?.message_attributes ?? '')).toEqual(batch[0]?.messageAttributes);
    expect(spaced?.stored_at.getTime()).toBeGreaterThan(Date.now() - 10 * 60_000);
  });

  it('two writers storing the same keys at the same time leave exactly one row per key', async () => {
    // Prepare
    const table = await preparedTable();
    const [a, b] = await Promise.all([openSink(table), openSink(table)]);
    const batch = messageRecords(60);

    // Act
    const results = await Promise.all([a.write(batch), b.write(batch)]);
    // The contract allows a retryable failure (a deadlock beyond its retries); the queue would redeliver.
    const retried = failures(results.flat());
    const again = await a.write(batch.filter((r) => retried.some((f) => f.key === r.key)));
    await Promise.all([a.close(), b.close()]);

    // Assess
    expect(retried.every((f) => !f.ok && f.retryable)).toBe(true);
    expect(failures(again)).toEqual([]);
    expect(await countOf(admin, table)).toEqual({ rows: 60, keys: 60 });
  });

  it('fails only the poison messages of a batch; their neighbours are stored', async () => {
    // Prepare
    const table = await preparedTable();
    const sink = await openSink(table);
    const good = messageRecords(8);
    const brokenJson = messageRecord({ rawBody: '{"eventId": "evt-1", "type": ' });
    const scalarBody = messageRecord({ rawBody: '"just a string"', body: 'just a string' });
    const longKey = messageRecord({ key: 'k'.repeat(500) });

    // Act
    const results = await sink.write([
      good[0],
      brokenJson,
      ...good.slice(1, 5),
      scalarBody,
      longKey,
      ...good.slice(5),
    ] as MessageRecord[]);
    await sink.close();

    // Assess
    const failed = new Map(failures(results).map((r) => [r.key, r]));
    expect([...failed.keys()].sort()).toEqual([brokenJson.key, scalarBody.key, longKey.key].sort());
    expect(failed.get(brokenJson.key)).toMatchObject({
      retryable: false,
      error: expect.stringContaining('SQL Server error 547'),
    });
    expect(failed.get(scalarBody.key)).toMatchObject({
      retryable: false,
      error: expect.stringContaining('547'),
    });
    expect(failed.get(longKey.key)).toMatchObject({
      retryable: false,
      error: expect.stringContaining('450'),
    });
    const stored = (await rowsOf(admin, table)).map((row) => row.message_key).sort();
    expect(stored).toEqual(good.map((r) => r.key).sort());
  });

  it(`stores a batch larger than one statement can carry (${MSSQL_ROWS_PER_STATEMENT} rows under the 2,100-parameter limit)`, async () => {
    // Prepare
    const table = await preparedTable();
    const sink = await openSink(table);
    const batch = messageRecords(400);

    // Act
    const results = await sink.write(batch);
    await sink.close();

    // Assess
    expect(failures(results)).toEqual([]);
    expect(await countOf(admin, table)).toEqual({ rows: 400, keys: 400 });
  });

  it('keeps keys that differ only in case apart, as MongoDB does', async () => {
    // Prepare
    const table = await preparedTable();
    const sink = await openSink(table);

    // Act
    const results = await sink.write([messageRecord({ key: 'Order-1' }), messageRecord({ key: 'order-1' })]);
    await sink.close();

    // Assess
    expect(failures(results)).toEqual([]);
    expect(await countOf(admin, table)).toEqual({ rows: 2, keys: 2 });
  });

  it('makes every record retryable when its pool is gone, and a fresh sink stores them', async () => {
    // Prepare
    const table = await preparedTable();
    const settings = settingsFor(table);
    const pool = createMssqlPool(settings.connection);
    const sink = new MssqlSink({ ...settings, pool });
    await sink.open();
    const batch = messageRecords(5);
    await pool.close();

    // Act
    const during = await sink.write(batch);
    const recovered = await openSink(table);
    const after = await recovered.write(batch);
    await Promise.all([sink.close(), recovered.close()]);

    // Assess
    expect(during.every((r) => !r.ok && r.retryable)).toBe(true);
    expect(failures(after)).toEqual([]);
    expect(await countOf(admin, table)).toEqual({ rows: 5, keys: 5 });
  });

  it('survives the server going away mid-run: retryable failures, then everything stored once, when it is back', async () => {
    // Prepare: the sink reaches the server through a proxy that can cut every connection.
    const table = await preparedTable();
    const settings = settingsFor(table);
    const proxy = await TcpProxy.start({
      host: settings.connection.server,
      port: settings.connection.port ?? 1433,
    });
    // The proxy answers on 127.0.0.1, which a verified certificate would not name.
    const sink = await openSink(table, {
      server: '127.0.0.1',
      port: proxy.port,
      trustServerCertificate: true,
      connectTimeoutMs: 3000,
    });
    const before = messageRecords(5);
    const during = messageRecords(5);

    try {
      // Act
      const stored = await sink.write(before);
      await proxy.down();
      const refused = await sink.write(during);
      await proxy.up();
      const retried = await sink.write(during);

      // Assess
      expect(failures(stored)).toEqual([]);
      expect(refused.every((r) => !r.ok && r.retryable)).toBe(true);
      expect(failures(retried)).toEqual([]);
      expect(await countOf(admin, table)).toEqual({ rows: 10, keys: 10 });
    } finally {
      await sink.close();
      await proxy.down();
    }
  });

  it('open() fails with DEPENDENCY_UNAVAILABLE (exit 3) when nothing listens, and points at init-db when the table is missing', async () => {
    // Prepare
    const settings = settingsFor(freshTable());
    const nobody = new MssqlSink({
      ...settings,
      connection: {
        ...settings.connection,
        server: '127.0.0.1',
        port: await freePort(),
        connectTimeoutMs: 2000,
      },
    });
    const missing = new MssqlSink(settingsFor(freshTable('awsmsg_missing')));

    // Act
    const unreachable = await nobody.open().catch((e: unknown) => e);
    const noTable = await missing.open().catch((e: unknown) => e);
    await Promise.all([nobody.close(), missing.close()]);

    // Assess
    expect(unreachable).toBeInstanceOf(AppError);
    expect((unreachable as AppError).exitCode).toBe(3);
    expect((unreachable as AppError).message).not.toContain(settings.connection.password);
    expect(noTable).toBeInstanceOf(AppError);
    expect((noTable as AppError).code).toBe('DEPENDENCY_UNAVAILABLE');
    expect((noTable as AppError).message).toContain('create it with `aws-msg init-db`');
  });
});

describeWithPeers(['mssql', 'sqs'], 'process-sqs into SQL Server, end to end', () => {
  const table = freshTable('awsmsg_e2e');
  let sqs: SQSClient;
  let admin: ConnectionPool;

  beforeAll(async () => {
    sqs = testSqsClient(requirePeer('sqs'));
    admin = createMssqlPool(settingsFor(table).connection);
    await admin.connect();
  });

  afterAll(async () => {
    await admin.request().batch(`DROP TABLE IF EXISTS ${table.quoted};`);
    await admin.close();
    sqs.destroy();
  });

  it('stores every valid message once, dead-letters the invalid ones, empties the queue, and a rerun adds no row', async () => {
    // Prepare
    const init = await runCli(['init-db'], {
      env: { MSSQL_URL: requirePeer('mssql'), MSSQL_TABLE: table.display },
    });
    expect(init.code).toBe(0);
    const queue = await createQueue(sqs);
    const dlq = await createQueue(sqs);
    const env = processEnv({
      sqsEndpoint: requirePeer('sqs'),
      queueUrl: queue.url,
      extra: {
        MSSQL_URL: requirePeer('mssql'),
        MSSQL_TABLE: table.display,
        SQS_DLQ_URL: dlq.url,
        MESSAGE_SCHEMA: ORDER_SCHEMA,
        MESSAGE_ID_FIELD: 'eventId',
        SQS_UNTIL_EMPTY: 'true',
        SQS_RETRY_BACKOFF: '1s',
      },
    });
    const mixed = mixedBodies(60);
    await sendBodies(sqs, queue.url, mixed.bodies);

    // Act
    const first = await processSqs(processSettings(env), { logger: silentLogger });
    await sendBodies(sqs, queue.url, mixed.bodies);
    const rerun = await processSqs(processSettings(env), { logger: silentLogger });

    // Assess
    for (const summary of [first, rerun]) {
      expect(summary).toMatchObject({
        stopReason: 'queue-empty',
        stores: ['mssql'],
        received: 60,
        stored: mixed.valid.length,
        rejected: mixed.invalidJson + mixed.schemaInvalid,
        deadLettered: mixed.invalidJson + mixed.schemaInvalid,
        failed: 0,
        deleted: 60,
      });
    }
    const rows = await rowsOf(admin, table);
    expect(rows.map((row) => row.message_key).sort()).toEqual([...mixed.valid].sort());
    for (const row of rows) expect(JSON.parse(row.body)).toMatchObject({ eventId: row.message_key });
    expect(await queueDepth(sqs, queue.url)).toEqual({ visible: 0, inFlight: 0 });
  });
});
