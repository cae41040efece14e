/**
 * An in-memory stand-in for the slice of mssql's ConnectionPool the sink uses. It behaves like the
 * server where our logic depends on it: a statement is atomic (one refused row and nothing of the
 * statement is written), a MERGE upserts by key, and the errors it raises are the driver's own
 * RequestError/ConnectionError classes carrying SQL Server's error numbers.
 */
import sql from 'mssql';
import type { ISqlType } from 'mssql';
import type {
  MssqlPool,
  MssqlQueryResult,
  MssqlRequest,
  MssqlTransaction,
} from '../../src/database/sql-server-connector.js';

export interface BoundParameter {
  type: ISqlType;
  value: unknown;
}

export interface Statement {
  text: string;
  params: Map<string, BoundParameter>;
  /** Row values by column name, rebuilt from the `<column>_<row>` parameter names. */
  rows: Array<Record<string, unknown>>;
  inTransaction: boolean;
}

/** A server error as tedious reports it, wrapped the way mssql wraps it. */
export function serverError(number: number, message: string, severity = 16): Error {
  const inner = Object.assign(new Error(message), { info: { number, class: severity, state: 1, message } });
  return new sql.RequestError(inner, 'EREQUEST');
}

export function connectionError(code = 'ESOCKET'): Error {
  return new sql.ConnectionError(
    'Failed to connect to db.example.com:1433 - connect ECONNREFUSED',
    code as 'ESOCKET',
  );
}

function rowsOf(params: Map<string, BoundParameter>): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = [];
  for (const [name, { value }] of params) {
    const match = /^(.+)_(\d+)$/.exec(name);
    if (!match) continue;
    const row = (rows[Number(match[2])] ??= {});
    row[match[1] as string] = value;
  }
  return rows;
}

export class FakeMssqlServer implements MssqlPool {
  connected = false;
  closed = 0;
  /** Stored rows by message_key. */
  readonly table = new Map<string, Record<string, unknown>>();
  readonly statements: Statement[] = [];
  readonly batches: Array<{ text: string; inTransaction: boolean }> = [];
  readonly transactionEvents: string[] = [];
  tableExists = true;
  indexes: string[] = [];
  /** Errors thrown by the next statements, in order, before any row is looked at. */
  readonly failNext: unknown[] = [];
  /** Refuses a row the way a constraint would; the whole statement then fails. */
  refuseRow: (row: Record<string, unknown>) => Error | undefined = () => undefined;
  /** Fails a script batch. */
  failBatch: (text: string) => Error | undefined = () => undefined;
  connectError: Error | undefined;
  private readonly listeners = new Set<(error: unknown) => void>();

  get merges(): Statement[] {
    return this.statements.filter((s) => s.text.startsWith('MERGE'));
  }

  async connect(): Promise<void> {
    if (this.connectError) throw this.connectError;
    this.connected = true;
  }

  async close(): Promise<void> {
    this.closed++;
    this.connected = false;
  }

  on(_event: 'error', listener: (error: unknown) => void): void {
    this.listeners.add(listener);
  }

  removeListener(_event: 'error', listener: (error: unknown) => void): void {
    this.listeners.delete(listener);
  }

  listenerCount(): number {
    return this.listeners.size;
  }

  request(inTransaction = false): MssqlRequest {
    const params = new Map<string, BoundParameter>();
    return {
      input: (name: string, type: ISqlType, value: unknown) => {
        params.set(name, { type, value });
      },
      query: async (text: string) => this.run({ text, params, rows: rowsOf(params), inTransaction }),
      batch: async (text: string) => {
        this.batches.push({ text, inTransaction });
        const error = this.failBatch(text);
        if (error) throw error;
        if (/CREATE TABLE/.test(text)) {
          this.tableExists = true;
          this.indexes.push('PK__messages__1', 'UQ__messages__2');
        }
        for (const match of text.matchAll(/CREATE INDEX (\w+)/g)) this.indexes.push(match[1] as string);
        return { rowsAffected: [] };
      },
    };
  }

  transaction(): MssqlTransaction {
    return {
      begin: async () => void this.transactionEvents.push('begin'),
      commit: async () => void this.transactionEvents.push('commit'),
      rollback: async () => void this.transactionEvents.push('rollback'),
      request: () => this.request(true),
    };
  }

  private async run(statement: Statement): Promise<MssqlQueryResult> {
    this.statements.push(statement);
    if (!this.connected) throw new sql.ConnectionError('Connection not yet open.', 'ENOTOPEN');
    const queued = this.failNext.shift();
    if (queued !== undefined) throw queued;
    if (statement.text.includes('sys.indexes')) {
      if (!this.tableExists) return { recordset: [{ object_id: null, name: null }], rowsAffected: [1] };
      return {
        recordset: this.indexes.map((name) => ({ object_id: 42, name })),
        rowsAffected: [this.indexes.length],
      };
    }
    if (statement.text.startsWith('SELECT TOP (0)')) {
      if (!this.tableExists) throw serverError(208, "Invalid object name 'dbo.messages'.");
      return { recordset: [], rowsAffected: [0] };
    }
    if (statement.text.startsWith('MERGE')) {
      for (const row of statement.rows) {
        const error = this.refuseRow(row);
        if (error) throw error;
      }
      for (const row of statement.rows) this.table.set(String(row['message_key']), row);
      return { rowsAffected: [statement.rows.length] };
    }
    throw new Error(`the fake does not know this statement: ${statement.text.slice(0, 40)}`);
  }
}
