/**
 * The building blocks of configuration: one `Spec` per setting, naming its flag, its
 * environment variable, its default and a parser that says what a valid value looks like.
 * Commander options are generated from the same specs, so a flag and its variable cannot drift.
 */

/** A raw value as it arrives: a string from the environment or a flag, `true`/`false` from a switch. */
export type RawValue = string | boolean;

/** Thrown by a parser: `expected` completes the sentence "expected ...". */
export class InvalidValue extends Error {
  constructor(readonly expected: string) {
    super(expected);
  }
}

export type Parser<T> = (raw: RawValue) => T;

export interface Spec<T> {
  /** Commander flag syntax, e.g. `--wait-time-seconds <seconds>`. Absent for environment-only settings. */
  flags?: string;
  /** Environment variables, first match wins (e.g. `AWS_REGION` then `AWS_DEFAULT_REGION`). */
  env?: readonly string[];
  /** One line for `--help` and `.env.example`. */
  description: string;
  /** Applied when no source sets a value. A function is called at resolve time. */
  default?: T | (() => T);
  /** How the default reads in --help and the README when it is computed. */
  defaultLabel?: string;
  /** Missing value is a configuration error. */
  required?: boolean;
  /** The value is never echoed in an error message and is registered for log redaction. */
  secret?: boolean;
  parse: Parser<T>;
}

/** Builds a spec; the overloads make the resolved type non-optional when a default exists or it is required. */
export function spec<T>(
  s: Spec<T> & ({ default: T | (() => T) } | { required: true }),
): Spec<T> & { __has: true };
export function spec<T>(s: Spec<T>): Spec<T> & { __has: false };
export function spec<T>(s: Spec<T>): Spec<T> {
  return s;
}

export type SpecTable = Record<string, Spec<unknown> & { __has: boolean }>;

/** The typed result of resolving a table. */
export type Resolved<S extends SpecTable> = {
  [K in keyof S]: S[K] extends Spec<infer T> & { __has: true }
    ? T
    : S[K] extends Spec<infer T>
      ? T | undefined
      : never;
};

// ---------------------------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------------------------

function text(raw: RawValue, expected: string): string {
  if (typeof raw !== 'string') throw new InvalidValue(expected);
  return raw.trim();
}

export const parseString =
  (expected = 'a non-empty string'): Parser<string> =>
  (raw) => {
    const value = text(raw, expected);
    if (value === '') throw new InvalidValue(expected);
    return value;
  };

export const parseInteger =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    const expected =
      max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    const value = text(raw, expected);
    if (!/^-?\d+$/.test(value)) throw new InvalidValue(expected);
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidValue(expected);
    return n;
  };

export const parseEnum =
  <const T extends string>(values: readonly T[]): Parser<T> =>
  (raw) => {
    const expected = `one of ${values.join(', ')}`;
    const value = text(raw, expected).toLowerCase();
    if (!(values as readonly string[]).includes(value)) throw new InvalidValue(expected);
    return value as T;
  };

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

export const parseBoolean: Parser<boolean> = (raw) => {
  if (typeof raw === 'boolean') return raw;
  const value = raw.trim().toLowerCase();
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  throw new InvalidValue('true or false (also 1/0, yes/no, on/off)');
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds, into milliseconds. */
export const parseDurationMs =
  (minMs: number, maxMs: number): Parser<number> =>
  (raw) => {
    const expected = `a duration such as 500ms, 30s, 5m or 1h (bare numbers are seconds) from ${formatDuration(minMs)} to ${formatDuration(maxMs)}`;
    const value = text(raw, expected).toLowerCase();
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(value);
    if (!match) throw new InvalidValue(expected);
    const ms = Math.round(Number(match[1]) * (DURATION_UNITS[match[2] ?? 's'] ?? 1000));
    if (ms < minMs || ms > maxMs) throw new InvalidValue(expected);
    return ms;
  };

/** Renders milliseconds the way `parseDurationMs` reads them. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Parses `1048576`, `512KiB`, `10MB`, `2G` (binary multiples) into bytes. */
export const parseBytes =
  (min = 1): Parser<number> =>
  (raw) => {
    const expected = `a size in bytes such as 1048576, 512KiB, 10MiB or 2GiB (at least ${min})`;
    const value = text(raw, expected).toLowerCase();
    const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(value);
    const factor = match ? SIZE_UNITS[match[2] || 'b'] : undefined;
    if (!match || factor === undefined) throw new InvalidValue(expected);
    const bytes = Math.floor(Number(match[1]) * factor);
    if (!Number.isSafeInteger(bytes) || bytes < min) throw new InvalidValue(expected);
    return bytes;
  };

/** Parses an absolute URL whose scheme is one of `protocols` (without the colon). */
export const parseUrl =
  (protocols: readonly string[]): Parser<string> =>
  (raw) => {
    const expected = `an absolute ${protocols.join(' or ')} URL`;
    const value = text(raw, expected);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new InvalidValue(expected);
    }
    if (!protocols.includes(url.protocol.replace(/:$/, ''))) throw new InvalidValue(expected);
    return value;
  };
