import { readFile, stat } from 'node:fs/promises';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse as parseTolerant, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { DEFAULT_MAX_INPUT_FILE_BYTES } from '../config/constants.js';
import { AppError } from './errors.js';

// ajv-formats is CommonJS; NodeNext types its default import as the module object, while at run
// time the default import is already the plugin function.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** One problem found by a validator, ready for a one-line message. */
export interface ValidationProblem {
  /** JSON pointer of the offending value (`/` for the document root). */
  pointer: string;
  /** The JSON Schema keyword that failed (`required`, `pattern`, `type`...). */
  rule: string;
  message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; problems: ValidationProblem[] };

/** A compiled JSON Schema. Compile once, call per document. */
export interface Validator<T> {
  validate(data: unknown): ValidationResult<T>;
}

// allErrors stays off: the first problem per document is what a user fixes first, and it keeps
// validation of hot-path messages cheap. `strict: false` accepts user schemas with unknown keywords.
// One Ajv per schema: Ajv registers schemas by $id, so a shared instance would refuse to compile
// the same file twice in one process (a warm Lambda, a test run).
function newAjv(validateSchema: boolean): Ajv {
  const ajv = new Ajv({ allErrors: false, strict: false, allowUnionTypes: true, validateSchema });
  addFormats(ajv);
  return ajv;
}

function toProblem(error: ErrorObject): ValidationProblem {
  const params = error.params as Record<string, unknown>;
  let message = error.message ?? 'is invalid';
  if (error.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
    message = `must not have the property "${params['additionalProperty']}"`;
  } else if (error.keyword === 'enum' && Array.isArray(params['allowedValues'])) {
    message = `must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return { pointer: error.instancePath === '' ? '/' : error.instancePath, rule: error.keyword, message };
}

/** Formats a problem as `<pointer>: <message> (rule <keyword>)`. */
export function formatProblem(problem: ValidationProblem): string {
  return `${problem.pointer}: ${problem.message} (rule "${problem.rule}")`;
}

/**
 * Compiles a JSON Schema (draft-07). `source` names the schema in the error raised when the
 * schema itself is broken, e.g. `--schema my.schema.json`. `bundled`: a schema shipped with the
 * package, not checked against the draft-07 meta-schema (compiling that costs ~16 ms per run).
 */
export function compileSchema<T>(
  schema: object | boolean,
  source: string,
  options: { bundled?: boolean } = {},
): Validator<T> {
  let fn: ValidateFunction;
  try {
    fn = newAjv(options.bundled !== true).compile(schema);
  } catch (error) {
    throw new AppError('CONFIG_INVALID', `${source}: not a usable JSON Schema: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return {
    validate(data: unknown): ValidationResult<T> {
      if (fn(data)) return { ok: true, value: data as T };
      return { ok: false, problems: (fn.errors ?? []).map(toProblem) };
    },
  };
}

/** Line and column (both 1-based) of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const PARSE_ERROR_TEXT: Record<string, string> = {
  InvalidSymbol: 'unexpected character',
  InvalidNumberFormat: 'invalid number',
  PropertyNameExpected: 'expected a double-quoted property name',
  ValueExpected: 'expected a value',
  ColonExpected: "expected ':'",
  CommaExpected: "expected ','",
  CloseBraceExpected: "expected '}'",
  CloseBracketExpected: "expected ']'",
  EndOfFileExpected: 'unexpected content after the JSON value',
  InvalidCommentToken: 'comments are not allowed in JSON',
  UnexpectedEndOfComment: 'comments are not allowed in JSON',
  UnexpectedEndOfString: 'unterminated string',
  UnexpectedEndOfNumber: 'unterminated number',
  InvalidUnicode: 'invalid unicode escape',
  InvalidEscapeCharacter: 'invalid escape character',
  InvalidCharacter: 'invalid character in string',
};

/**
 * Parses JSON text. On a syntax error, throws INPUT_INVALID_JSON naming `source`, the line and
 * column. JSON.parse is the fast path; the tolerant parser only runs to locate an error, because
 * V8's messages do not always carry a position.
 */
export function parseJsonText(text: string, source: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (error) {
    const errors: ParseError[] = [];
    parseTolerant(body, errors, {
      allowTrailingComma: false,
      disallowComments: true,
      allowEmptyContent: false,
    });
    const first = errors[0];
    if (first === undefined) {
      throw new AppError('INPUT_INVALID_JSON', `${source}: invalid JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const { line, column } = lineAndColumn(body, first.offset);
    const code = printParseErrorCode(first.error);
    const what = body.trim() === '' ? 'the file is empty' : (PARSE_ERROR_TEXT[code] ?? code);
    throw new AppError('INPUT_INVALID_JSON', `${source}:${line}:${column}: invalid JSON: ${what}`, {
      cause: error,
      details: { line, column },
    });
  }
}

export interface ReadJsonOptions {
  /** Files larger than this are refused before reading. Default 64 MiB. */
  maxBytes?: number;
  /** How the file is named in errors; default the path itself. */
  label?: string;
}

function humanBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Reads and parses a JSON file, refusing files above the size limit. */
export async function readJsonFile(path: string, options: ReadJsonOptions = {}): Promise<unknown> {
  const label = options.label ?? path;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_INPUT_FILE_BYTES;
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new AppError('INPUT_NOT_FOUND', `${label}: not a regular file`);
    size = info.size;
  } catch (error) {
    throw cannotRead(error, label);
  }
  if (size > maxBytes) {
    throw new AppError(
      'INPUT_TOO_LARGE',
      `${label}: the file is ${humanBytes(size)}, above the ${humanBytes(maxBytes)} limit for input files`,
    );
  }
  let text: string;
  try {
    // The file can change between stat and read (permissions, replaced by a directory).
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw cannotRead(error, label);
  }
  return parseJsonText(text, label);
}

function cannotRead(error: unknown, label: string): AppError {
  if (error instanceof AppError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'it is a directory'
          : String(code ?? (error as Error).message);
  return new AppError('INPUT_NOT_FOUND', `${label}: cannot read the file: ${why}`, { cause: error });
}

/**
 * Reads a JSON file and validates it. A schema violation throws INPUT_SCHEMA naming the file,
 * the JSON pointer of the bad value and the rule it broke.
 */
export async function readValidatedJson<T>(
  path: string,
  validator: Validator<T>,
  options: ReadJsonOptions = {},
): Promise<T> {
  const data = await readJsonFile(path, options);
  const result = validator.validate(data);
  if (result.ok) return result.value;
  const label = options.label ?? path;
  const first = result.problems[0];
  const message = first ? `${label}: ${formatProblem(first)}` : `${label}: does not match its schema`;
  throw new AppError('INPUT_SCHEMA', message, { details: { problems: result.problems } });
}
