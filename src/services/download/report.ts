/**
 * The run summary and the `--report` file. The report is streamed line by line into a temporary
 * file and renamed, so a large list never builds one huge string and a reader never sees half a
 * report.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DownloadReport, DownloadResult, DownloadSummary } from './types.js';

export interface SummaryCounters {
  bytesReceived: number;
  httpRequests: number;
  durationMs: number;
  s3Requests?: Record<string, number>;
}

export function summarise(results: readonly DownloadResult[], counters: SummaryCounters): DownloadSummary {
  const summary: DownloadSummary = {
    total: results.length,
    downloaded: 0,
    unchanged: 0,
    skipped: 0,
    failed: 0,
    cancelled: 0,
    bytesReceived: counters.bytesReceived,
    httpRequests: counters.httpRequests,
    retries: 0,
    renamed: 0,
    durationMs: counters.durationMs,
    bytesPerSecond:
      counters.durationMs > 0 ? Math.round((counters.bytesReceived * 1000) / counters.durationMs) : 0,
  };
  for (const result of results) {
    summary[result.status] += 1;
    if (result.attempts > 1) summary.retries += result.attempts - 1;
    if (result.renamedFrom !== null) summary.renamed += 1;
  }
  if (counters.s3Requests !== undefined) summary.s3Requests = counters.s3Requests;
  return summary;
}

/** Whether the run did everything asked: nothing failed or was cancelled. */
export function allSucceeded(summary: DownloadSummary): boolean {
  return summary.failed === 0 && summary.cancelled === 0;
}

/** Lines of the report, batched so the write stream sees few large chunks. */
function* reportChunks(report: DownloadReport): Generator<string> {
  yield `{\n  "summary": ${JSON.stringify(report.summary)},\n  "results": [\n`;
  let batch = '';
  const last = report.results.length - 1;
  for (let i = 0; i <= last; i++) {
    batch += `    ${JSON.stringify(report.results[i])}${i < last ? ',' : ''}\n`;
    if (batch.length >= 64 * 1024) {
      yield batch;
      batch = '';
    }
  }
  yield `${batch}  ]\n}\n`;
}

/** Writes the JSON report atomically: `{ "summary": {...}, "results": [ one entry per URL ] }`. */
export async function writeReportFile(path: string, report: DownloadReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await pipeline(Readable.from(reportChunks(report)), createWriteStream(tmp));
    await rename(tmp, path);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Byte counts the way the summary and the progress bar print them. */
export function formatBytes(bytes: number): string {
  return human(bytes);
}

/** One human line: `1998 downloaded, 2 failed of 2000 (31.3 MiB in 1.2 s, 26.1 MiB/s, 2010 requests)`. */
export function formatSummary(summary: DownloadSummary): string {
  const parts = (['downloaded', 'unchanged', 'skipped', 'failed', 'cancelled'] as const)
    .filter((key) => summary[key] > 0 || key === 'downloaded')
    .map((key) => `${summary[key]} ${key}`);
  const seconds = (summary.durationMs / 1000).toFixed(1);
  const extras = [
    `${formatBytes(summary.bytesReceived)} in ${seconds} s`,
    `${formatBytes(summary.bytesPerSecond)}/s`,
    `${summary.httpRequests} requests`,
  ];
  if (summary.renamed > 0) extras.push(`${summary.renamed} renamed to avoid a name collision`);
  return `${parts.join(', ')} of ${summary.total} (${extras.join(', ')})`;
}
