import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Manifest, manifestKey } from '../../../src/services/download/manifest.js';
import { ByteMeter, verifySha256 } from '../../../src/services/download/meter.js';
import { formatSummary, summarise, writeReportFile } from '../../../src/services/download/report.js';
import type { DownloadResult } from '../../../src/services/download/types.js';

describe('manifest', () => {
  it('round-trips its records', () => {
    const manifest = Manifest.empty();
    const key = manifestKey('https://example.com/a.csv');
    manifest.set(key, {
      path: 'a.csv',
      etag: '"x"',
      bytes: 3,
      sha256: 'ab',
      updatedAt: '2024-01-01T00:00:00.000Z',
    });

    const { manifest: read, problem } = Manifest.parse(manifest.serialize());

    expect(problem).toBeUndefined();
    expect(read.get(key)).toEqual({
      path: 'a.csv',
      etag: '"x"',
      bytes: 3,
      sha256: 'ab',
      updatedAt: '2024-01-01T00:00:00.000Z',
    });
    expect(read.dirty).toBe(false);
  });

  it('keys records by the SHA-256 of the full URL: no secret in the key, and secrets tell URLs apart', () => {
    const url = 'https://cdn.example.com/f.zip?X-Amz-Signature=abc123&token=t1';
    const a = manifestKey(url);
    const b = manifestKey('https://cdn.example.com/f.zip?X-Amz-Signature=def456&token=t2');
    expect(a).toBe(createHash('sha256').update(url).digest('hex'));
    expect(a).not.toBe(b);
  });

  it('carries over version 1 records keyed by a URL without a masked secret, and rewrites the file', () => {
    const plain = 'https://example.com/a.csv';
    const masked = 'https://example.com/b.csv?token=***';
    const parsed = Manifest.parse(
      JSON.stringify({
        version: 1,
        files: { [plain]: { path: 'a.csv', updatedAt: 'x' }, [masked]: { path: 'b.csv', updatedAt: 'x' } },
      }),
    );
    expect(parsed.problem).toBeUndefined();
    expect(parsed.manifest.size).toBe(1);
    expect(parsed.manifest.get(manifestKey(plain))).toEqual({ path: 'a.csv', url: plain, updatedAt: 'x' });
    expect(parsed.manifest.dirty).toBe(true);
    expect(parsed.manifest.serialize()).toContain('"version": 2');
  });

  it('gives each path to one URL: a new record for a path drops the old owner', () => {
    const manifest = Manifest.empty();
    manifest.set('a', { path: 'data.csv', updatedAt: 'x' });
    manifest.set('b', { path: 'Data.csv', updatedAt: 'y' });
    expect(manifest.ownerOf('data.csv')).toBe('b');
    expect(manifest.get('a')).toBeUndefined();
    manifest.set('b', { path: 'other.csv', updatedAt: 'z' });
    expect(manifest.ownerOf('data.csv')).toBeUndefined();
  });

  it.each([
    ['{broken', 'not valid JSON'],
    ['null', 'not a version 2 manifest'],
    ['{"version":3,"files":{}}', 'not a version 2 manifest'],
  ])('treats %j as empty and says why', (text, problem) => {
    const parsed = Manifest.parse(text);
    expect(parsed.manifest.size).toBe(0);
    expect(parsed.problem).toContain(problem);
  });

  it('drops malformed records and keeps the good ones', () => {
    const parsed = Manifest.parse(
      JSON.stringify({ version: 2, files: { good: { path: 'g', updatedAt: 'x' }, bad: { path: 7 } } }),
    );
    expect(parsed.manifest.size).toBe(1);
  });
});

describe('ByteMeter', () => {
  it('verifies the length', () => {
    const meter = new ByteMeter({ startBytes: 0, expectedTotal: 5 });
    meter.update(Buffer.from('hel'));
    meter.update(Buffer.from('lo'));
    expect(() => meter.finish()).not.toThrow();
    expect(meter.total).toBe(5);
  });

  it('calls a short body a retryable truncation and a long one a permanent error', () => {
    const short = new ByteMeter({ startBytes: 0, expectedTotal: 10 });
    short.update(Buffer.from('abc'));
    expect(() => short.finish()).toThrow(
      expect.objectContaining({ reason: 'length_mismatch', retryable: true }),
    );
    const long = new ByteMeter({ startBytes: 0, expectedTotal: 2 });
    long.update(Buffer.from('abc'));
    expect(() => long.finish()).toThrow(
      expect.objectContaining({ reason: 'length_mismatch', retryable: false }),
    );
  });

  it('counts a resumed prefix against the limit', () => {
    const meter = new ByteMeter({ startBytes: 90, maxBytes: 100 });
    meter.update(Buffer.alloc(10));
    expect(() => meter.update(Buffer.alloc(1))).toThrow(
      expect.objectContaining({ reason: 'too_large', retryable: false }),
    );
    expect(meter.received).toBe(11);
  });

  it('reports progress per chunk', () => {
    const seen: number[] = [];
    const meter = new ByteMeter({ startBytes: 0, onBytes: (n) => seen.push(n) });
    meter.update(Buffer.alloc(3));
    meter.update(Buffer.alloc(4));
    expect(seen).toEqual([3, 4]);
  });
});

describe('verifySha256', () => {
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');

  it('accepts a match and anything when no checksum was asked for', () => {
    expect(() => verifySha256(sha('hello'), sha('hello'))).not.toThrow();
    expect(() => verifySha256(sha('hello'), undefined)).not.toThrow();
  });

  it('fails a checksum mismatch permanently', () => {
    expect(() => verifySha256(sha('hello'), sha('other'))).toThrow(
      expect.objectContaining({ reason: 'checksum_mismatch', retryable: false }),
    );
  });
});

describe('report', () => {
  const base: DownloadResult = {
    index: 0,
    url: 'https://e.com/a',
    status: 'downloaded',
    path: '/d/a',
    bytes: 10,
    sha256: 'ab',
    attempts: 1,
    durationMs: 5,
    httpStatus: 200,
    reason: null,
    error: null,
    renamedFrom: null,
    resumedFromBytes: 0,
    note: null,
  };
  const results: DownloadResult[] = [
    base,
    {
      ...base,
      index: 1,
      status: 'failed',
      attempts: 4,
      reason: 'http_status',
      error: 'HTTP 503',
      path: null,
    },
    { ...base, index: 2, status: 'skipped', attempts: 0, renamedFrom: 'a' },
  ];

  it('counts outcomes, retries and renames', () => {
    const summary = summarise(results, { bytesReceived: 2048, httpRequests: 5, durationMs: 1000 });
    expect(summary).toMatchObject({
      total: 3,
      downloaded: 1,
      failed: 1,
      skipped: 1,
      retries: 3,
      renamed: 1,
      bytesPerSecond: 2048,
    });
    expect(formatSummary(summary)).toBe(
      '1 downloaded, 1 skipped, 1 failed of 3 (2.0 KiB in 1.0 s, 2.0 KiB/s, 5 requests, 1 renamed to avoid a name collision)',
    );
  });

  it('writes one JSON document with the summary and every entry, atomically', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aws-msg-report-'));
    try {
      const many = Array.from({ length: 3000 }, (_, i) => ({ ...base, index: i }));
      const summary = summarise(many, { bytesReceived: 0, httpRequests: 0, durationMs: 1 });
      await writeReportFile(join(dir, 'sub', 'report.json'), { summary, results: many });
      const parsed = JSON.parse(readFileSync(join(dir, 'sub', 'report.json'), 'utf8')) as {
        summary: unknown;
        results: DownloadResult[];
      };
      expect(parsed.summary).toEqual(summary);
      expect(parsed.results).toHaveLength(3000);
      expect(parsed.results[2999]).toEqual({ ...base, index: 2999 });
      expect(readdirSync(join(dir, 'sub'))).toEqual(['report.json']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
