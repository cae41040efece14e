/**
 * SQL Server identifiers that come from configuration (the messages table). They are validated
 * against a deliberately narrow grammar and always emitted bracket-quoted, so a table name can be
 * placed in statement text without ever being able to change the statement's meaning.
 */

/** SQL Server's limit on one identifier (`sysname`). */
export const SQL_IDENTIFIER_MAX_LENGTH = 128;

// Regular identifiers as SQL Server defines them, restricted to ASCII; `#` and `@` may not lead
// (temporary tables, variables). Brackets, quotes, dots and spaces can never get through.
const IDENTIFIER_PART = /^[A-Za-z_][A-Za-z0-9_@$#]*$/;

/** A validated one- or two-part table name. */
export interface SqlTableName {
  /** The schema, when one was given (`dbo` in `dbo.messages`); otherwise the login's default schema applies. */
  schema?: string;
  name: string;
  /** Bracket-quoted for statement text: `[dbo].[messages]`. */
  quoted: string;
  /** As written in configuration: `dbo.messages`. */
  display: string;
}

export class InvalidSqlIdentifier extends Error {}

function checkPart(part: string, label: string): void {
  if (part === '') throw new InvalidSqlIdentifier(`the ${label} is empty`);
  if (part.length > SQL_IDENTIFIER_MAX_LENGTH) {
    throw new InvalidSqlIdentifier(`the ${label} is longer than ${SQL_IDENTIFIER_MAX_LENGTH} characters`);
  }
  if (!IDENTIFIER_PART.test(part)) {
    throw new InvalidSqlIdentifier(
      `the ${label} "${part}" must start with a letter or _ and contain only letters, digits, _, @, $ and #`,
    );
  }
}

/** Brackets are safe here only because `checkPart` has already refused `]`. */
function bracket(part: string): string {
  return `[${part}]`;
}

/** Parses `table` or `schema.table`; throws InvalidSqlIdentifier saying what is wrong. */
export function parseSqlTableName(text: string): SqlTableName {
  const trimmed = text.trim();
  const parts = trimmed.split('.');
  if (parts.length > 2) {
    throw new InvalidSqlIdentifier('use table or schema.table (a database name cannot be part of it)');
  }
  if (parts.length === 2) {
    const [schema = '', name = ''] = parts;
    checkPart(schema, 'schema name');
    checkPart(name, 'table name');
    return { schema, name, quoted: `${bracket(schema)}.${bracket(name)}`, display: `${schema}.${name}` };
  }
  checkPart(trimmed, 'table name');
  return { name: trimmed, quoted: bracket(trimmed), display: trimmed };
}
