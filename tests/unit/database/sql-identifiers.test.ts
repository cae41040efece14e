import { InvalidSqlIdentifier, parseSqlTableName } from '../../../src/database/sql-identifiers.js';

describe('table names from configuration', () => {
  it.each([
    ['messages', '[messages]', undefined, 'messages'],
    ['dbo.messages', '[dbo].[messages]', 'dbo', 'messages'],
    [' audit.sqs_messages ', '[audit].[sqs_messages]', 'audit', 'sqs_messages'],
    ['_t', '[_t]', undefined, '_t'],
    ['Msg$2026#q@x', '[Msg$2026#q@x]', undefined, 'Msg$2026#q@x'],
    [`s.${'t'.repeat(128)}`, `[s].[${'t'.repeat(128)}]`, 's', 't'.repeat(128)],
    ['select', '[select]', undefined, 'select'],
  ])('accepts %j as %s', (text, quoted, schema, name) => {
    // Act
    const table = parseSqlTableName(text);

    // Assess
    expect(table).toEqual({
      ...(schema !== undefined ? { schema } : {}),
      name,
      quoted,
      display: text.trim(),
    });
  });

  it.each([
    ['', 'the table name is empty'],
    ['dbo.', 'the table name is empty'],
    ['.messages', 'the schema name is empty'],
    ['shop.dbo.messages', 'use table or schema.table (a database name cannot be part of it)'],
    ['1messages', 'must start with a letter or _'],
    ['#temp', 'must start with a letter or _'],
    ['@table', 'must start with a letter or _'],
    ['[dbo].[messages]', 'must start with a letter or _'],
    ['mess ages', 'contain only letters, digits, _, @, $ and #'],
    ['messages]; DROP TABLE x; --', 'contain only letters'],
    ["messages'", 'contain only letters'],
    ['dbo.mes-sages', 'contain only letters'],
    ['méssages', 'contain only letters'],
    ['t'.repeat(129), 'longer than 128 characters'],
  ])('rejects %j: %s', (text, reason) => {
    // Act
    const act = () => parseSqlTableName(text);

    // Assess
    expect(act).toThrow(InvalidSqlIdentifier);
    expect(act).toThrow(reason);
  });
});
