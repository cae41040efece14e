/**
 * The `--archive-when` rule: a small matcher on body fields.
 *
 *   *                      every record (the default)
 *   type=order             equality; a number, true/false or null compares in its JSON form
 *   type=order|refund      one of several values
 *   status!=draft          inequality (a missing field counts as different)
 *   amount>=1000           numeric comparison: >, >=, <, <=
 *   customer.tier=gold     dot paths reach nested fields
 *   priority               presence: the field exists and is not null
 *   !test                  absence: the field is missing or null
 *   type=order,amount>100  a comma joins clauses; all must hold
 *   note="a,b"             a JSON string literal quotes commas, pipes and spaces
 */
import { getPath } from '../utils/json-path.js';

type Op = '=' | '!=' | '>' | '>=' | '<' | '<=';

export type Clause =
  | { kind: 'present'; path: string }
  | { kind: 'absent'; path: string }
  | { kind: 'compare'; path: string; op: '=' | '!='; values: string[] }
  | { kind: 'numeric'; path: string; op: '>' | '>=' | '<' | '<='; value: number };

export interface ArchiveRule {
  /** The rule as written, for logs and the summary. */
  source: string;
  /** Empty means every record. */
  clauses: Clause[];
}

const PATH = /^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$/;
const CLAUSE = /^(!?)([^!=<>]+?)\s*(?:(!=|>=|<=|=|>|<)\s*(.*))?$/s;

/** Splits on `sep` outside double-quoted JSON strings. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === '\\' && quoted) {
      current += ch + (text[i + 1] ?? '');
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      parts.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  if (quoted) throw new Error('expected a closing double quote');
  parts.push(current);
  return parts;
}

function unquote(value: string, where: string): string {
  const trimmed = value.trim();
  if (!trimmed.startsWith('"')) return trimmed;
  try {
    const parsed: unknown = JSON.parse(trimmed);
    if (typeof parsed === 'string') return parsed;
  } catch {
    // fall through to the error below
  }
  throw new Error(`expected a valid JSON string literal in ${where}`);
}

/** Parses a rule. Throws an Error whose message starts with "expected" on bad syntax. */
export function parseArchiveRule(source: string): ArchiveRule {
  const text = source.trim();
  if (text === '*' || text === '') return { source: '*', clauses: [] };
  const clauses = splitOutsideQuotes(text, ',').map((part, index): Clause => {
    const where = `clause ${index + 1} ("${part.trim()}")`;
    const match = CLAUSE.exec(part.trim());
    if (!match) throw new Error(`expected field, !field or field<op>value in ${where}`);
    const [, bang, rawPath, op, rawValue] = match;
    const path = (rawPath ?? '').trim();
    if (!PATH.test(path)) throw new Error(`expected a field name or dot path in ${where}`);
    if (op === undefined) return bang ? { kind: 'absent', path } : { kind: 'present', path };
    if (bang) throw new Error(`expected either !field or a comparison in ${where}, not both`);
    if (rawValue === undefined || rawValue.trim() === '')
      throw new Error(`expected a value after "${op}" in ${where}`);
    if (op === '=' || op === '!=') {
      const values = splitOutsideQuotes(rawValue, '|').map((v) => unquote(v, where));
      return { kind: 'compare', path, op, values };
    }
    const value = Number(rawValue.trim());
    if (!Number.isFinite(value)) throw new Error(`expected a number after "${op}" in ${where}`);
    return { kind: 'numeric', path, op: op as Exclude<Op, '=' | '!='>, value };
  });
  return { source: text, clauses };
}

function equalsAny(actual: unknown, values: string[]): boolean {
  if (Array.isArray(actual)) return actual.some((item) => equalsAny(item, values));
  if (actual === undefined || (typeof actual === 'object' && actual !== null)) return false;
  const asText = typeof actual === 'string' ? actual : JSON.stringify(actual);
  return values.includes(asText);
}

function holds(clause: Clause, body: unknown): boolean {
  const actual = getPath(body, clause.path);
  switch (clause.kind) {
    case 'present':
      return actual !== undefined && actual !== null;
    case 'absent':
      return actual === undefined || actual === null;
    case 'compare':
      return equalsAny(actual, clause.values) === (clause.op === '=');
    case 'numeric': {
      if (typeof actual !== 'number') return false;
      if (clause.op === '>') return actual > clause.value;
      if (clause.op === '>=') return actual >= clause.value;
      if (clause.op === '<') return actual < clause.value;
      return actual <= clause.value;
    }
  }
}

/** True when `body` satisfies every clause of the rule. */
export function matchesArchiveRule(rule: ArchiveRule, body: unknown): boolean {
  return rule.clauses.every((clause) => holds(clause, body));
}
