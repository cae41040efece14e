/**
 * Settings of `aws-msg init-db`: the same SQL Server and MongoDB settings process-sqs uses, so
 * that the table and indexes it prepares are the ones process-sqs writes to.
 */
import { resolve } from 'node:path';
import { ConfigError } from '../utils/errors.js';
import {
  PACKAGE_ROOT,
  resolveMongoSettings,
  resolveOptions,
  type ConfigSources,
  type MongoSettings,
} from './config-loader.js';
import { resolveMssqlSettings, type MssqlSettings } from './mssql-settings.js';
import { parseBoolean, spec } from './options.js';

/** The DDL `init-db` applies; shipped with the package (see `files` in package.json). */
export const MESSAGES_TABLE_SCRIPT = resolve(PACKAGE_ROOT, 'create_messages_table.sql');

export const INIT_DB_OPTIONS = {
  json: spec({
    flags: '--json',
    description: 'print what was created as one JSON object on stdout',
    default: false,
    parse: parseBoolean,
  }),
};

export interface InitDbSettings {
  mssql?: MssqlSettings;
  mongo?: MongoSettings;
  /** Absolute path of the SQL script. */
  scriptFile: string;
  json: boolean;
}

export function loadInitDbSettings(sources: ConfigSources): InitDbSettings {
  const problems: string[] = [];
  const o = resolveOptions(INIT_DB_OPTIONS, sources, problems);
  const mssql = resolveMssqlSettings(sources, problems);
  const mongo = resolveMongoSettings(sources, problems);
  if (mssql === undefined && mongo === undefined && problems.length === 0) {
    problems.push(
      'no database configured: set --mssql-url (MSSQL_URL or MSSQL_HOST) and/or --mongo-uri (MONGODB_URI)',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const settings: InitDbSettings = { scriptFile: MESSAGES_TABLE_SCRIPT, json: o.json };
  if (mssql !== undefined) settings.mssql = mssql;
  if (mongo !== undefined) settings.mongo = mongo;
  return settings;
}
