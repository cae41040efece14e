import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqlScriptError, splitSqlBatches, substituteSqlVariables } from '../../../src/database/sql-script.js';
import { REPO_ROOT } from '../../helpers/cli.js';

const texts = (script: string) => splitSqlBatches(script).map((batch) => batch.text);

describe('splitting a script on GO lines', () => {
  it('splits on GO alone on its line, in any case, with spaces or a trailing comment', () => {
    // Prepare
    const script = ['SELECT 1;', 'GO', 'SELECT 2;', '  go  ', 'SELECT 3;', 'Go -- done', 'SELECT 4;'].join(
      '\n',
    );

    // Act
    const batches = splitSqlBatches(script);

    // Assess
    expect(batches).toEqual([
      { text: 'SELECT 1;', startLine: 1 },
      { text: 'SELECT 2;', startLine: 3 },
      { text: 'SELECT 3;', startLine: 5 },
      { text: 'SELECT 4;', startLine: 7 },
    ]);
  });

  it('keeps GO that is part of a statement, an identifier, a string or a comment', () => {
    // Prepare
    const script = [
      'GOTO done; -- GO',
      "SELECT 'it''s', '",
      'GO',
      "' AS s;",
      '/* a comment /* nested */',
      'GO',
      '*/ SELECT [a',
      'GO',
      '] AS [go];',
      'GO',
      'SELECT 2;',
    ].join('\n');

    // Act
    const batches = splitSqlBatches(script);

    // Assess
    expect(batches).toHaveLength(2);
    expect(batches[0]?.text.split('\n')).toHaveLength(9);
    expect(batches[1]).toEqual({ text: 'SELECT 2;', startLine: 11 });
  });

  it('repeats a batch for GO n, drops empty batches, and handles CRLF and a BOM', () => {
    expect(texts('\uFEFFINSERT t VALUES (1);\r\nGO 3\r\n\r\nGO\r\n  \r\nGO\r\n')).toEqual([
      'INSERT t VALUES (1);',
      'INSERT t VALUES (1);',
      'INSERT t VALUES (1);',
    ]);
  });

  it.each([
    ['SELECT 1; /* open', 'inside a /* comment */'],
    ["SELECT 'open", "inside a '-quoted literal"],
    ['SELECT 1;\nGO 0', 'GO needs a count of at least 1'],
  ])('refuses %j', (script, reason) => {
    expect(() => splitSqlBatches(script)).toThrow(SqlScriptError);
    expect(() => splitSqlBatches(script)).toThrow(reason);
  });
});

describe('scripting variables', () => {
  it('replaces every $(NAME), in statements and inside string literals', () => {
    // Act
    const text = substituteSqlVariables("IF OBJECT_ID(N'$(T)') IS NULL CREATE TABLE $(T) (a INT);", {
      T: '[dbo].[messages]',
    });

    // Assess
    expect(text).toBe("IF OBJECT_ID(N'[dbo].[messages]') IS NULL CREATE TABLE [dbo].[messages] (a INT);");
  });

  it('refuses a variable that has no value rather than sending it to the server', () => {
    expect(() =>
      substituteSqlVariables('SELECT * FROM $(MSSQL_TABEL) JOIN $(X)', { MSSQL_TABLE: 't' }),
    ).toThrow('no value for scripting variable $(MSSQL_TABEL), $(X)');
  });
});

describe('create_messages_table.sql', () => {
  const script = readFileSync(join(REPO_ROOT, 'create_messages_table.sql'), 'utf8');
  const batches = splitSqlBatches(substituteSqlVariables(script, { MSSQL_TABLE: '[dbo].[messages]' }));

  it('is five batches: session options, the table, and one per index', () => {
    expect(batches).toHaveLength(5);
    expect(batches[0]?.text).toMatch(/SET ANSI_NULLS ON;\s+SET QUOTED_IDENTIFIER ON;/);
    expect(batches[1]?.text).toMatch(
      /IF OBJECT_ID\(N'\[dbo\]\.\[messages\]', N'U'\) IS NULL\s+BEGIN\s+CREATE TABLE/,
    );
    for (const [index, name] of [
      [2, 'IX_sent_at'],
      [3, 'IX_message_id'],
      [4, 'IX_group_sequence'],
    ] as const) {
      expect(batches[index]?.text).toContain(`IF NOT EXISTS (SELECT 1 FROM sys.indexes`);
      expect(batches[index]?.text).toContain(`name = N'${name}'`);
      expect(batches[index]?.text).toContain(`CREATE INDEX ${name} ON [dbo].[messages]`);
    }
  });

  it('names the table only through the placeholder', () => {
    expect(script).not.toMatch(/\bmessages\s*\(/);
    expect(batches.map((b) => b.text).join('\n')).not.toContain('$(');
  });

  it('checks that the body and both attribute columns hold JSON', () => {
    const table = batches[1]?.text ?? '';
    expect(table).toContain('CHECK (ISJSON(body) = 1)');
    expect(table).toContain('CHECK (ISJSON(attributes) = 1)');
    expect(table).toContain('CHECK (ISJSON(message_attributes) = 1)');
    expect(table).toMatch(
      /message_key\s+NVARCHAR\(450\) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY/,
    );
  });
});
