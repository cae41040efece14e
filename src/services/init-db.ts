/**
 * `init-db` as a service: creates what process-sqs writes to, in every configured database.
 * SQL Server gets `create_messages_table.sql` (the table and its indexes); MongoDB gets the unique
 * key index and the sent-time index. Everything is created only when missing, so a second run
 * changes nothing and says so.
 */
import { readFile } from 'node:fs/promises';
import { MongoServerError, type Collection, type MongoClient } from 'mongodb';
import type { MongoSettings } from '../config/config-loader.js';
import type { InitDbSettings } from '../config/init-db-settings.js';
import type { MssqlSettings } from '../config/mssql-settings.js';
import {
  MONGO_INDEXES,
  createMongoClient,
  describeMongoTarget,
  ensureMongoIndexes,
  isTransientMongoError,
  type MessageDocument,
} from '../database/mongodb-connector.js';
import {
  applyMessagesTableScript,
  createMssqlPool,
  describeMssqlError,
  describeMssqlTarget,
  isTransientMssqlError,
  type MessagesTableReport,
  type MssqlPool,
} from '../database/sql-server-connector.js';
import { AppError, describeError, isAppError } from '../utils/errors.js';
import { redactString, type Logger } from '../utils/logger.js';

export interface InitDbDeps {
  logger: Logger;
  /** Injected SQL Server pool; connected if needed, never closed here. */
  mssqlPool?: MssqlPool;
  /** Injected MongoDB client; never closed here. */
  mongo?: MongoClient;
}

export interface MssqlInitReport extends MessagesTableReport {
  target: string;
}

export interface MongoInitReport {
  target: string;
  /** Indexes of process-sqs that did not exist before this run. */
  indexesCreated: string[];
}

export interface InitDbSummary {
  /** The databases prepared, in order: `mssql`, `mongodb`. */
  stores: string[];
  mssql?: MssqlInitReport;
  mongo?: MongoInitReport;
  durationMs: number;
}

export async function initDb(settings: InitDbSettings, deps: InitDbDeps): Promise<InitDbSummary> {
  const started = Date.now();
  const summary: InitDbSummary = { stores: [], durationMs: 0 };
  if (settings.mssql) {
    summary.mssql = await initMssql(settings.mssql, settings.scriptFile, deps);
    summary.stores.push('mssql');
  }
  if (settings.mongo) {
    summary.mongo = await initMongo(settings.mongo, deps);
    summary.stores.push('mongodb');
  }
  summary.durationMs = Date.now() - started;
  return summary;
}

async function initMssql(
  settings: MssqlSettings,
  scriptFile: string,
  deps: InitDbDeps,
): Promise<MssqlInitReport> {
  const target = describeMssqlTarget(settings.connection);
  // Read before connecting: a missing script is a broken installation, not an unreachable server.
  const script = await readFile(scriptFile, 'utf8');
  const pool = deps.mssqlPool ?? createMssqlPool(settings.connection);
  const onPoolError = (error: unknown) =>
    deps.logger.debug('store_pool_error', { store: 'mssql', error: describeMssqlError(error) });
  pool.on('error', onPoolError);
  try {
    if (!pool.connected) await pool.connect();
    const report = await applyMessagesTableScript(pool, settings.table, script);
    deps.logger.info('store_initialised', {
      store: 'mssql',
      target,
      table: report.table,
      tableCreated: report.tableCreated,
      indexesCreated: report.indexesCreated,
    });
    return { target, ...report };
  } catch (error) {
    if (isAppError(error))
      throw new AppError(error.code, `${target}: ${error.message}`, {
        cause: error,
        retryable: error.retryable,
      });
    throw new AppError('DEPENDENCY_UNAVAILABLE', `${target}: ${describeMssqlError(error)}`, {
      cause: error,
      retryable: isTransientMssqlError(error),
    });
  } finally {
    pool.removeListener('error', onPoolError);
    if (!deps.mssqlPool) await pool.close().catch(() => undefined);
  }
}

/** Index names, or none when the collection does not exist yet. */
async function indexNames(collection: Collection<MessageDocument>): Promise<string[]> {
  try {
    return (await collection.listIndexes().toArray()).map((index) => String(index['name']));
  } catch (error) {
    if (error instanceof MongoServerError && (error.code === 26 || error.codeName === 'NamespaceNotFound'))
      return [];
    throw error;
  }
}

async function initMongo(settings: MongoSettings, deps: InitDbDeps): Promise<MongoInitReport> {
  const target = describeMongoTarget(settings.uri, settings.database, settings.collection);
  const client = deps.mongo ?? createMongoClient(settings.uri);
  try {
    await client.connect();
    const collection = client.db(settings.database).collection<MessageDocument>(settings.collection);
    const before = await indexNames(collection);
    await ensureMongoIndexes(collection);
    const after = await indexNames(collection);
    const indexesCreated = MONGO_INDEXES.map((index) => index.name).filter(
      (name) => after.includes(name) && !before.includes(name),
    );
    deps.logger.info('store_initialised', { store: 'mongodb', target, indexesCreated });
    return { target, indexesCreated };
  } catch (error) {
    throw new AppError('DEPENDENCY_UNAVAILABLE', `${target}: ${redactString(describeError(error))}`, {
      cause: error,
      retryable: isTransientMongoError(error),
    });
  } finally {
    if (!deps.mongo) await client.close().catch(() => undefined);
  }
}
