/**
 * Reads the URL list: JSON validated against `schemas/urls.schema.json`, then normalised into one
 * `DownloadEntry` per URL with the defaults merged in. Every error names the file, the JSON pointer
 * of the bad value and the rule it broke; nothing is downloaded when the list is invalid.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../config/config-loader.js';
import { AppError } from '../../utils/errors.js';
import {
  compileSchema,
  formatProblem,
  readJsonFile,
  type ValidationProblem,
  type Validator,
} from '../../utils/file-reader.js';
import { registerSecret } from '../../utils/logger.js';
import type { DownloadEntry } from './types.js';

/** The bundled schema of the input file. */
export const URLS_SCHEMA_PATH = join(PACKAGE_ROOT, 'schemas', 'urls.schema.json');

interface RawEntry {
  url: string;
  filename?: string;
  sha256?: string;
  headers?: Record<string, string>;
  maxBytes?: number;
}
type RawItem = string | RawEntry;
type RawList =
  RawItem[] | { defaults?: { headers?: Record<string, string>; maxBytes?: number }; urls: RawItem[] };

// Headers the downloader sets itself; letting the input set them would break resume and
// conditional requests or corrupt the framing.
const RESERVED_HEADERS = new Set([
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'upgrade',
  'expect',
  'te',
]);

let validator: Validator<RawList> | undefined;

function urlsValidator(): Validator<RawList> {
  validator ??= compileSchema<RawList>(
    JSON.parse(readFileSync(URLS_SCHEMA_PATH, 'utf8')) as object,
    URLS_SCHEMA_PATH,
    { bundled: true },
  );
  return validator;
}

function inputError(label: string, pointer: string, message: string, rule: string): AppError {
  return new AppError('INPUT_SCHEMA', `${label}: ${formatProblem({ pointer, message, rule })}`, {
    details: { pointer, rule },
  });
}

/** A schema problem with the URL pattern reads better as what is allowed. */
function friendly(problem: ValidationProblem): ValidationProblem {
  if (problem.rule === 'pattern' && /(^\/urls|^)\/\d+(\/url)?$/.test(problem.pointer)) {
    return { ...problem, message: 'must be an absolute http:// or https:// URL' };
  }
  return problem;
}

function checkUrl(raw: string, label: string, pointer: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw inputError(label, pointer, 'must be an absolute http:// or https:// URL', 'format');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw inputError(label, pointer, 'must be an absolute http:// or https:// URL', 'format');
  }
  if (url.username !== '' || url.password !== '') {
    // Credentials in a URL end up in logs, reports and proxies; headers are kept secret instead.
    throw inputError(
      label,
      pointer,
      'must not contain credentials (user:password@); put them in "headers" (e.g. Authorization)',
      'format',
    );
  }
  url.hash = '';
  return url.href;
}

function mergeHeaders(
  label: string,
  pointer: string,
  ...layers: Array<Record<string, string> | undefined>
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const [name, value] of Object.entries(layer)) {
      const lower = name.toLowerCase();
      if (RESERVED_HEADERS.has(lower)) {
        throw inputError(
          label,
          `${pointer}/headers/${name}`,
          'is set by aws-msg itself and cannot be given',
          'reserved',
        );
      }
      out[lower] = value;
    }
  }
  return out;
}

/** Normalises an already-validated document. Exported for tests that build lists in memory. */
export function normaliseUrlList(data: unknown, label = 'input'): DownloadEntry[] {
  const result = urlsValidator().validate(data);
  if (!result.ok) {
    const first = result.problems[0];
    throw new AppError(
      'INPUT_SCHEMA',
      first ? `${label}: ${formatProblem(friendly(first))}` : `${label}: does not match its schema`,
      { details: { problems: result.problems } },
    );
  }
  const list = result.value;
  const items = Array.isArray(list) ? list : list.urls;
  const base = Array.isArray(list) ? '' : '/urls';
  const defaults = Array.isArray(list) ? undefined : list.defaults;
  const defaultHeaders = mergeHeaders(label, '/defaults', defaults?.headers);

  const entries: DownloadEntry[] = [];
  for (let index = 0; index < items.length; index++) {
    const item = items[index] as RawItem;
    const pointer = `${base}/${index}`;
    const raw: RawEntry = typeof item === 'string' ? { url: item } : item;
    const url = checkUrl(raw.url, label, typeof item === 'string' ? pointer : `${pointer}/url`);
    const entry: DownloadEntry = {
      index,
      pointer,
      url,
      headers: raw.headers ? mergeHeaders(label, pointer, defaultHeaders, raw.headers) : defaultHeaders,
    };
    if (raw.filename !== undefined) entry.filename = raw.filename;
    if (raw.sha256 !== undefined) entry.sha256 = raw.sha256.toLowerCase();
    const maxBytes = raw.maxBytes ?? defaults?.maxBytes;
    if (maxBytes !== undefined) entry.maxBytes = maxBytes;
    entries.push(entry);
  }
  // Header values may be tokens: mask them wherever they might surface (driver errors included).
  const seen = new Set<Record<string, string>>();
  for (const entry of entries) {
    if (seen.has(entry.headers)) continue;
    seen.add(entry.headers);
    for (const value of Object.values(entry.headers)) registerSecret(value);
  }
  return entries;
}

export interface LoadUrlListOptions {
  /** Files larger than this are refused. Default 64 MiB. */
  maxBytes?: number;
  /** How the file is named in errors; default the path. */
  label?: string;
}

/** Reads, validates and normalises a URL list file. Throws an AppError (exit code 2) on any problem. */
export async function loadUrlList(path: string, options: LoadUrlListOptions = {}): Promise<DownloadEntry[]> {
  const label = options.label ?? path;
  const readOptions: { label: string; maxBytes?: number } = { label };
  if (options.maxBytes !== undefined) readOptions.maxBytes = options.maxBytes;
  const data = await readJsonFile(path, readOptions);
  return normaliseUrlList(data, label);
}
