/**
 * Reading a T-SQL script the way sqlcmd and SSMS do: `$(NAME)` scripting variables substituted
 * as text, then batches separated by `GO` lines. The server never sees `GO`; each batch is sent
 * on its own, which DDL such as CREATE TABLE followed by CREATE INDEX needs.
 */

/** One batch of a script, with where it starts for error messages. */
export interface SqlBatch {
  text: string;
  /** 1-based line of the script where this batch begins. */
  startLine: number;
}

export class SqlScriptError extends Error {}

// `GO`, optionally with a repeat count, then optionally a line comment: what sqlcmd accepts.
const GO_LINE = /^\s*go(?:\s+(\d+))?\s*(?:--.*)?$/i;

type ScanState = { blockDepth: number; quote: "'" | '"' | ']' | undefined };

/**
 * Advances the lexical state across one line, so that a `GO` inside a multi-line comment or
 * string literal is not taken for a separator. Nested block comments are counted as T-SQL does.
 */
function scanLine(line: string, state: ScanState): void {
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    const next = line[i + 1];
    if (state.quote !== undefined) {
      if (c === state.quote) {
        // A doubled closing character is an escaped one ('' in strings, ]] in identifiers).
        if (next === state.quote) i++;
        else state.quote = undefined;
      }
    } else if (state.blockDepth > 0) {
      if (c === '/' && next === '*') {
        state.blockDepth++;
        i++;
      } else if (c === '*' && next === '/') {
        state.blockDepth--;
        i++;
      }
    } else if (c === '-' && next === '-') {
      return;
    } else if (c === '/' && next === '*') {
      state.blockDepth = 1;
      i++;
    } else if (c === "'" || c === '"') {
      state.quote = c;
    } else if (c === '[') {
      state.quote = ']';
    }
  }
}

/**
 * Splits a script on `GO` lines. `GO n` repeats its batch n times, as sqlcmd does. Batches that
 * hold nothing but whitespace are dropped. An unterminated comment or literal is an error rather
 * than a silently merged batch.
 */
export function splitSqlBatches(script: string): SqlBatch[] {
  const lines = script.replace(/^\uFEFF/, '').split(/\r?\n/);
  const batches: SqlBatch[] = [];
  const state: ScanState = { blockDepth: 0, quote: undefined };
  let current: string[] = [];
  let startLine = 1;
  const flush = (repeat: number) => {
    const text = current.join('\n');
    if (text.trim() !== '') for (let n = 0; n < repeat; n++) batches.push({ text, startLine });
    current = [];
  };
  lines.forEach((line, index) => {
    const atTopLevel = state.blockDepth === 0 && state.quote === undefined;
    const go = atTopLevel ? GO_LINE.exec(line) : null;
    if (go) {
      const repeat = go[1] === undefined ? 1 : Number(go[1]);
      if (repeat < 1) throw new SqlScriptError(`line ${index + 1}: GO needs a count of at least 1`);
      flush(repeat);
      startLine = index + 2;
      return;
    }
    if (current.length === 0) startLine = index + 1;
    current.push(line);
    scanLine(line, state);
  });
  if (state.blockDepth > 0) throw new SqlScriptError('the script ends inside a /* comment */');
  if (state.quote !== undefined)
    throw new SqlScriptError(`the script ends inside a ${state.quote}-quoted literal`);
  flush(1);
  return batches;
}

const VARIABLE = /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g;

/**
 * Replaces every `$(NAME)` with its value, everywhere in the text (sqlcmd does not spare string
 * literals either, which is what lets `OBJECT_ID(N'$(MSSQL_TABLE)')` work). A variable without
 * a value is an error: a typo must not reach the server as literal text.
 */
export function substituteSqlVariables(script: string, variables: Readonly<Record<string, string>>): string {
  const missing = new Set<string>();
  const text = script.replace(VARIABLE, (whole, name: string) => {
    const value = variables[name];
    if (value === undefined) {
      missing.add(name);
      return whole;
    }
    return value;
  });
  if (missing.size > 0) {
    throw new SqlScriptError(
      `no value for scripting variable ${[...missing].map((n) => `$(${n})`).join(', ')}`,
    );
  }
  return text;
}
