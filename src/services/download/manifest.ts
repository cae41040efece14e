/**
 * The manifest remembers, per URL, which name it was saved under and the server's validators
 * (ETag, Last-Modified). It lives next to the data (`<out>/.aws-msg-manifest.json`, or the same
 * key under the S3 prefix) and makes re-runs cheap: `--skip-existing` skips without a request,
 * `--if-changed` sends a conditional request, and names chosen from Content-Disposition stay stable.
 *
 * It is read once at start and written once at the end, so its cost does not grow per file.
 */
import { hash } from 'node:crypto';

export const MANIFEST_NAME = '.aws-msg-manifest.json';
/**
 * 2: keyed by the SHA-256 of the full URL. Version 1 keyed by the URL with secrets masked, so URLs
 * differing only in a token shared one record; its records without a masked part are carried over.
 */
const VERSION = 2;
/** What `redactString` puts in place of a secret. */
const MASK = '***';

export interface ManifestRecord {
  /** Relative name under the destination. */
  path: string;
  /** The URL with secrets masked, for people reading the file; never used to match. */
  url?: string;
  etag?: string;
  lastModified?: string;
  bytes?: number;
  sha256?: string;
  /** ISO time of the last download or confirmation. */
  updatedAt: string;
}

/**
 * Records are keyed by the SHA-256 of the full URL: no token reaches the file, and two URLs that
 * differ only in a secret (`?token=A`, `?token=B`) are two resources. A URL whose token rotates is
 * therefore a new URL each time.
 */
export function manifestKey(url: string): string {
  return hash('sha256', url, 'hex');
}

function isRecord(value: unknown): value is ManifestRecord {
  if (value === null || typeof value !== 'object') return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r['path'] === 'string' &&
    (r['url'] === undefined || typeof r['url'] === 'string') &&
    (r['etag'] === undefined || typeof r['etag'] === 'string') &&
    (r['lastModified'] === undefined || typeof r['lastModified'] === 'string') &&
    (r['bytes'] === undefined || typeof r['bytes'] === 'number') &&
    (r['sha256'] === undefined || typeof r['sha256'] === 'string')
  );
}

/** Paths are compared as the name registry compares them: case-insensitively. */
function pathKey(path: string): string {
  return path.normalize('NFC').toLowerCase();
}

export class Manifest {
  private readonly records: Map<string, ManifestRecord>;
  /** Which record holds each path: one file belongs to one URL. */
  private readonly owners = new Map<string, string>();
  private changed = false;

  private constructor(records: Map<string, ManifestRecord>, changed = false) {
    this.records = records;
    for (const [key, record] of records) this.owners.set(pathKey(record.path), key);
    this.changed = changed;
  }

  static empty(): Manifest {
    return new Manifest(new Map());
  }

  /**
   * Parses a manifest. A damaged file is not fatal (it is only an optimisation): the result is
   * empty and `problem` says why, for a warning.
   */
  static parse(text: string | undefined): { manifest: Manifest; problem?: string } {
    if (text === undefined) return { manifest: Manifest.empty() };
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      return { manifest: Manifest.empty(), problem: `not valid JSON (${(error as Error).message})` };
    }
    const doc = (data !== null && typeof data === 'object' ? data : {}) as {
      version?: unknown;
      files?: unknown;
    };
    const files = doc.files;
    if ((doc.version !== VERSION && doc.version !== 1) || files === null || typeof files !== 'object') {
      return { manifest: Manifest.empty(), problem: `not a version ${VERSION} manifest` };
    }
    const records = new Map<string, ManifestRecord>();
    for (const [key, value] of Object.entries(files as Record<string, unknown>)) {
      if (!isRecord(value)) continue;
      if (doc.version === VERSION) records.set(key, value);
      // A version 1 key is the URL itself unless a secret was masked in it: those cannot be matched.
      else if (!key.includes(MASK)) records.set(manifestKey(key), { ...value, url: key });
    }
    return { manifest: new Manifest(records, doc.version !== VERSION) };
  }

  /** `key` is `manifestKey(url)`; callers compute it once per URL. */
  get(key: string): ManifestRecord | undefined {
    return this.records.get(key);
  }

  /** The key of the record that holds `path`, if any. */
  ownerOf(path: string): string | undefined {
    return this.owners.get(pathKey(path));
  }

  /** Stores a record; a record of another URL with the same path is dropped (its file is replaced). */
  set(key: string, record: ManifestRecord): void {
    const previous = this.records.get(key);
    if (previous !== undefined && this.owners.get(pathKey(previous.path)) === key) {
      this.owners.delete(pathKey(previous.path));
    }
    const owner = this.owners.get(pathKey(record.path));
    if (owner !== undefined && owner !== key) this.records.delete(owner);
    this.owners.set(pathKey(record.path), key);
    this.records.set(key, record);
    this.changed = true;
  }

  /** Whether anything changed since it was read. */
  get dirty(): boolean {
    return this.changed;
  }

  get size(): number {
    return this.records.size;
  }

  serialize(): string {
    const lines: string[] = [];
    for (const [key, record] of this.records)
      lines.push(`    ${JSON.stringify(key)}: ${JSON.stringify(record)}`);
    return `{\n  "version": ${VERSION},\n  "files": {\n${lines.join(',\n')}\n  }\n}\n`;
  }
}
