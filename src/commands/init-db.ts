import { ExitCode } from '../config/constants.js';
import { INIT_DB_OPTIONS, loadInitDbSettings } from '../config/init-db-settings.js';
import { MSSQL_OPTIONS } from '../config/mssql-settings.js';
import { MONGO_OPTIONS } from '../config/settings.js';
import type { InitDbSummary } from '../services/init-db.js';
import type { CommandDefinition } from './command.js';
import { emitSummary } from './summary.js';

function list(names: readonly string[]): string {
  return names.length === 0 ? 'none' : names.join(', ');
}

function rows(s: InitDbSummary): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (s.mssql) {
    out.push(['SQL Server', s.mssql.target]);
    out.push(['  table', `${s.mssql.table} ${s.mssql.tableCreated ? 'created' : 'already there'}`]);
    out.push(['  indexes created', list(s.mssql.indexesCreated)]);
  }
  if (s.mongo) {
    out.push(['MongoDB', s.mongo.target]);
    out.push(['  indexes created', list(s.mongo.indexesCreated)]);
  }
  out.push(['duration', `${(s.durationMs / 1000).toFixed(1)} s`]);
  return out;
}

export const initDbCommand: CommandDefinition = {
  name: 'init-db',
  summary: 'create the SQL Server table and the MongoDB indexes that process-sqs writes to (safe to rerun)',
  description:
    'SQL Server: applies create_messages_table.sql (split on GO lines, in one transaction) with the table\n' +
    'named by --mssql-table. MongoDB: creates the unique key index and the sent-time index. Only what is\n' +
    'missing is created, so running it again changes nothing. Configure either database, or both.',
  options: [INIT_DB_OPTIONS, MSSQL_OPTIONS, MONGO_OPTIONS],
  examples: [
    ['aws-msg init-db', 'prepare every database configured in the environment or .env'],
    [
      'aws-msg init-db --mssql-table audit.sqs_messages --json',
      'create the table in the audit schema and print what was created as JSON',
    ],
  ],
  async action(context) {
    const settings = loadInitDbSettings(context.sources);
    // Loaded on use: the service's drivers and SDKs would slow every other command's start.
    const { initDb } = await import('../services/init-db.js');
    const summary = await initDb(settings, { logger: context.logger });
    emitSummary(context, 'init-db summary', summary, rows(summary), settings.json);
    return ExitCode.OK;
  },
};
