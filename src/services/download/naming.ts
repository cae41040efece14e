/**
 * File names: where they come from (`filename`, then Content-Disposition, then the URL), how
 * untrusted names are made safe, and how collisions between entries are resolved.
 *
 * A name is a relative path with `/` separators. Sanitising removes every way out of the
 * destination (`..`, absolute paths, drive letters, backslashes), control characters, characters
 * that are invalid on common file systems, hidden-file dots and Windows device names. `resolveInside`
 * checks the result once more before anything touches the disk.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';

/** Used when neither the input nor the server nor the URL gives a usable name. */
export const FALLBACK_NAME = 'download';
/** The name wget and curl give to a URL that ends in `/`. */
export const INDEX_NAME = 'index.html';
/** Bytes of UTF-8 one path segment may take; most file systems allow 255. */
const MAX_SEGMENT_BYTES = 200;
/** Suffixes reserved for our own partial files and their resume records. */
const OWN_SUFFIXES = ['.part', '.part.json'];

/**
 * Windows device names, also with an extension and with spaces before it (`nul .txt`): the part
 * before the first dot, trailing spaces dropped, as Windows (and Python's `ntpath.isreserved`) sees it.
 */
const WINDOWS_DEVICE =
  /^(con|prn|aux|nul|conin\$|conout\$|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]) *(\..*)?$/i;
const MULTI_EXTENSIONS = ['.tar.gz', '.tar.bz2', '.tar.xz', '.tar.zst', '.tar.lz4', '.warc.gz'];

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = '';
  for (const char of text) {
    if (Buffer.byteLength(out + char) > maxBytes) break;
    out += char;
  }
  return out;
}

/** Splits `name.ext` (or `name.tar.gz`) into stem and extension. A leading dot is not an extension. */
export function splitExtension(name: string): [stem: string, ext: string] {
  const lower = name.toLowerCase();
  for (const ext of MULTI_EXTENSIONS) {
    if (lower.endsWith(ext) && name.length > ext.length) {
      return [name.slice(0, -ext.length), name.slice(-ext.length)];
    }
  }
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || name.length - dot > 16) return [name, ''];
  return [name.slice(0, dot), name.slice(dot)];
}

/**
 * Makes one path segment safe, or returns undefined when nothing usable is left (`..`, `...`,
 * only control characters). Never returns a segment that contains a separator.
 */
export function sanitizeSegment(raw: string): string | undefined {
  let name = raw.normalize('NFC');
  // Control characters (C0, DEL, C1) and the characters Windows, macOS or shells reject.
  // eslint-disable-next-line no-control-regex
  name = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '');
  name = name.replace(/[/\\:*?"<>|]/g, '_');
  // Leading dots would make hidden files (or `..`).
  name = name.trim().replace(/^\.+/, '');
  if (Buffer.byteLength(name) > MAX_SEGMENT_BYTES) {
    // Two bytes spare for the `_` the checks below may add.
    const [stem, ext] = splitExtension(name);
    name = truncateUtf8(stem, MAX_SEGMENT_BYTES - 2 - Buffer.byteLength(ext)) + ext;
  }
  // After truncating, which can expose any of these: trailing dots and spaces are dropped by
  // Windows, device names and our own suffixes are made harmless.
  name = name.replace(/[. ]+$/, '');
  if (name === '') return undefined;
  if (WINDOWS_DEVICE.test(name)) name = `_${name}`;
  if (OWN_SUFFIXES.some((suffix) => name.toLowerCase().endsWith(suffix))) name = `${name}_`;
  return name;
}

/**
 * Sanitises a relative path given in the input (`filename`): `/` and `\` separate segments,
 * `.`, `..` and empty segments are dropped, so `../../etc/passwd` becomes `etc/passwd`.
 */
export function sanitizeRelativePath(raw: string): string | undefined {
  const segments = raw
    .split(/[/\\]+/)
    .filter((segment) => segment !== '' && segment !== '.' && segment !== '..')
    .map(sanitizeSegment)
    .filter((segment): segment is string => segment !== undefined);
  return segments.length > 0 ? segments.join('/') : undefined;
}

/** The last segment of a path, whichever separator it uses. */
function basenameOf(path: string): string {
  const parts = path.split(/[/\\]+/).filter((part) => part !== '');
  return parts[parts.length - 1] ?? '';
}

function decodePercent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The sanitised last path segment of a URL; `index.html` for a URL ending in `/`. */
export function nameFromUrl(url: string): string {
  const { pathname } = new URL(url);
  if (pathname === '' || pathname.endsWith('/')) return INDEX_NAME;
  const last = pathname.slice(pathname.lastIndexOf('/') + 1);
  return sanitizeSegment(basenameOf(decodePercent(last))) ?? FALLBACK_NAME;
}

/** Splits a header value on `;` outside quoted strings. */
function splitParams(value: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const char = value[i] as string;
    if (quoted && char === '\\' && i + 1 < value.length) {
      current += char + (value[i + 1] as string);
      i++;
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (char === ';' && !quoted) {
      parts.push(current);
      current = '';
      continue;
    }
    current += char;
  }
  parts.push(current);
  return parts.map((part) => part.trim()).filter((part) => part !== '');
}

function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    return value.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return value;
}

/** Decodes an RFC 8187 ext-value (`UTF-8''na%C3%AFve.txt`). */
function decodeExtValue(value: string): string | undefined {
  const match = /^([\w!#$%&+^`{}~-]+)'[^']*'(.*)$/.exec(value);
  if (!match) return undefined;
  const charset = (match[1] ?? '').toLowerCase();
  const encoded = match[2] ?? '';
  if (charset === 'utf-8') {
    try {
      return decodeURIComponent(encoded);
    } catch {
      return undefined;
    }
  }
  if (charset === 'iso-8859-1') {
    return encoded.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  return undefined;
}

/**
 * The raw file name a Content-Disposition header proposes (RFC 6266): `filename*` wins over
 * `filename`. Returns the basename only; the caller still sanitises it.
 */
export function filenameFromContentDisposition(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  let plain: string | undefined;
  let extended: string | undefined;
  for (const param of splitParams(header).slice(1)) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const key = param.slice(0, eq).trim().toLowerCase();
    const value = param.slice(eq + 1).trim();
    if (key === 'filename*') extended ??= decodeExtValue(unquote(value));
    else if (key === 'filename') plain ??= unquote(value);
  }
  const chosen = extended ?? plain;
  if (chosen === undefined) return undefined;
  const base = basenameOf(chosen);
  return base === '' ? undefined : base;
}

/** Appends `-n` before the extension: `report.pdf` -> `report-2.pdf`, `a/b.tar.gz` -> `a/b-2.tar.gz`. */
export function withSuffix(name: string, n: number): string {
  const slash = name.lastIndexOf('/');
  const dir = slash >= 0 ? name.slice(0, slash + 1) : '';
  const [stem, ext] = splitExtension(name.slice(slash + 1));
  return `${dir}${stem}-${n}${ext}`;
}

/** Collision key: case-insensitive, so the result is the same on case-insensitive file systems. */
function keyOf(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

/** Where a planned name came from. `url` names may still be replaced by a Content-Disposition name. */
export type NameSource = 'filename' | 'manifest' | 'url';

export interface NameClaim {
  name: string;
  /** The name that was wanted, when a collision forced another one. */
  renamedFrom?: string;
}

/** The directories a name needs: `a/b/c.txt` -> `a`, `a/b` (as collision keys). */
function parentKeys(key: string): string[] {
  const out: string[] = [];
  for (let slash = key.indexOf('/'); slash >= 0; slash = key.indexOf('/', slash + 1)) {
    out.push(key.slice(0, slash));
  }
  return out;
}

/**
 * Hands out unique names. `plan` resolves every name known before the run: first the names the
 * manifest gives to listed URLs (their files are already there), then the others in list order
 * (the first entry keeps the name, later ones get `-2`, `-3`...), so those results never depend on
 * timing. `claim` resolves a name learnt later from a response header against everything handed
 * out so far. A name is also taken when another entry needs it as a directory (`a` against `a/b`),
 * or needs one of its directories as a file.
 */
export class NameRegistry {
  private readonly owners = new Map<string, number>();
  /** Directories the names handed out need. */
  private readonly directories = new Set<string>();

  /** Resolves candidates by source (manifest first), then by `index`. Returns the claim per index. */
  plan(
    candidates: ReadonlyArray<{ index: number; name: string; source?: NameSource }>,
  ): Map<number, NameClaim> {
    const rank = (source: NameSource | undefined) => (source === 'manifest' ? 0 : 1);
    const sorted = [...candidates].sort((a, b) => rank(a.source) - rank(b.source) || a.index - b.index);
    const claims = new Map<number, NameClaim>();
    const losers: Array<{ index: number; name: string }> = [];
    // First pass: every name's first claimant keeps it, so `x-2.txt` asked for explicitly by a
    // later entry wins over a `-2` suffix invented for an earlier `x.txt` duplicate.
    for (const candidate of sorted) {
      if (this.blocker(keyOf(candidate.name), candidate.index) !== undefined) losers.push(candidate);
      else {
        this.take(keyOf(candidate.name), candidate.index);
        claims.set(candidate.index, { name: candidate.name });
      }
    }
    for (const candidate of losers) claims.set(candidate.index, this.takeFree(candidate));
    return claims;
  }

  /** Claims a name for `index`; keeps it if the entry already owns it. */
  claim(index: number, name: string): NameClaim {
    const key = keyOf(name);
    if (this.blocker(key, index) === undefined) {
      this.take(key, index);
      return { name };
    }
    return this.takeFree({ index, name });
  }

  /**
   * Why `key` is not free for `index`: `'file'` when another entry owns it or another name needs it
   * as a directory; else the number of segments of its first directory that is another entry's
   * file. Undefined when it is free (or already this entry's).
   */
  private blocker(key: string, index: number): 'file' | number | undefined {
    const owner = this.owners.get(key);
    if ((owner !== undefined && owner !== index) || this.directories.has(key)) return 'file';
    const dirs = parentKeys(key);
    for (let i = 0; i < dirs.length; i++) {
      if (this.owners.has(dirs[i] as string)) return i + 1;
    }
    return undefined;
  }

  private take(key: string, index: number): void {
    this.owners.set(key, index);
    for (const dir of parentKeys(key)) this.directories.add(dir);
  }

  private takeFree(candidate: { index: number; name: string }): NameClaim {
    const wanted = candidate.name;
    const blocked = this.blocker(keyOf(wanted), candidate.index);
    let variant = (n: number) => withSuffix(wanted, n);
    if (typeof blocked === 'number') {
      // A directory of the name is another entry's file: that directory gets the counter.
      const segments = wanted.split('/');
      const dir = segments.slice(0, blocked).join('/');
      const rest = segments.slice(blocked).join('/');
      variant = (n) => `${withSuffix(dir, n)}/${rest}`;
    }
    for (let n = 2; ; n++) {
      const name = variant(n);
      const key = keyOf(name);
      // A variant this entry already owns is its own (planned `a-2.txt`, then a header says `a.txt`).
      if (this.blocker(key, candidate.index) === undefined) {
        this.take(key, candidate.index);
        return { name, renamedFrom: wanted };
      }
    }
  }
}

/** Thrown when a name would resolve outside the destination; sanitising makes this unreachable. */
export class PathEscapeError extends Error {
  constructor(name: string) {
    super(`refusing the name "${name}": it resolves outside the destination`);
    this.name = 'PathEscapeError';
  }
}

/**
 * Whether `name` is a relative POSIX path whose every segment is an ordinary name (no empty, `.`
 * or `..` segment, no backslash, no NUL): appended to a directory after a `/`, it cannot leave
 * that directory. What `sanitizeRelativePath` returns always passes; `resolveInside` covers the rest.
 */
export function isPlainRelativeName(name: string): boolean {
  if (name === '' || name.includes('\\') || name.includes('\u0000')) return false;
  let start = 0;
  for (;;) {
    const end = name.indexOf('/', start);
    const segment = end < 0 ? name.slice(start) : name.slice(start, end);
    if (segment === '' || segment === '.' || segment === '..') return false;
    if (end < 0) return true;
    start = end + 1;
  }
}

/** Joins `name` under `root` and proves the result stays inside it. */
export function resolveInside(root: string, name: string): string {
  const base = resolve(root);
  const target = resolve(base, ...name.split('/'));
  const rel = relative(base, target);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
    throw new PathEscapeError(name);
  }
  return target;
}
