/**
 * The manifest remembers, per URL, which name it was saved under and the server's validators
 * (ETag, Last-Modified). It lives next to the data (`<out>/.aws-msg-manifest.json`, or the same
 * key under the S3 prefix) and makes re-runs cheap: `--skip-existing` skips without a request,
 * `--if-changed` sends a conditional request, and names chosen from Content-Disposition stay stable.
 *
 * It is read once at start and written once at the end, so its cost does not grow per file.
 */
import { redactString } from '../../utils/logger.js';

export const MANIFEST_NAME = '.aws-msg-manifest.json';
const VERSION = 1;

export interface ManifestRecord {
  /** Relative name under the destination. */
  path: string;
  etag?: string;
  lastModified?: string;
  bytes?: number;
  sha256?: string;
  /** ISO time of the last download or confirmation. */
  updatedAt: string;
}

/**
 * Records are keyed by the URL with secrets masked: no token reaches the file, and a URL whose
 * token rotates (`?token=...`) still finds its record.
 */
export function manifestKey(url: string): string {
  const masked = redactString(url);
  // The same string object when nothing was masked: one copy per URL is kept, not two.
  return masked === url ? url : masked;
}

function isRecord(value: unknown): value is ManifestRecord {
  if (value === null || typeof value !== 'object') return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r['path'] === 'string' &&
    (r['etag'] === undefined || typeof r['etag'] === 'string') &&
    (r['lastModified'] === undefined || typeof r['lastModified'] === 'string') &&
    (r['bytes'] === undefined || typeof r['bytes'] === 'number') &&
    (r['sha256'] === undefined || typeof r['sha256'] === 'string')
  );
}

export class Manifest {
  private readonly records: Map<string, ManifestRecord>;
  private changed = false;

  private constructor(records: Map<string, ManifestRecord>) {
    this.records = records;
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
    if (doc.version !== VERSION || files === null || typeof files !== 'object') {
      return { manifest: Manifest.empty(), problem: `not a version ${VERSION} manifest` };
    }
    const records = new Map<string, ManifestRecord>();
    for (const [key, value] of Object.entries(files as Record<string, unknown>)) {
      if (isRecord(value)) records.set(key, value);
    }
    return { manifest: new Manifest(records) };
  }

  /** `key` is `manifestKey(url)`; callers compute it once per URL. */
  get(key: string): ManifestRecord | undefined {
    return this.records.get(key);
  }

  set(key: string, record: ManifestRecord): void {
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
