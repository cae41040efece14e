/**
 * Run summaries: one JSON object on stdout with --json, and the same figures on stderr for
 * people (a text block) or for log collectors (one `run_summary` event when logs are JSON).
 */
import { redact, redactString } from '../utils/logger.js';
import type { CommandContext } from './command.js';

export type SummaryRows = ReadonlyArray<readonly [label: string, value: string]>;

export function emitSummary(
  context: CommandContext,
  title: string,
  summary: object,
  rows: SummaryRows,
  json: boolean,
): void {
  // A summary quotes error text from drivers and SDKs (`error`), which may hold a secret; stdout
  // and the text block do not pass through the logger's redaction, so they get it here.
  if (json) context.stdout.write(`${JSON.stringify(redact(summary))}\n`);
  if (context.global.logFormat === 'json') {
    context.logger.info('run_summary', summary as Record<string, unknown>);
    return;
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  const text = rows.map(([label, value]) => `  ${label.padEnd(width)}  ${redactString(value)}`).join('\n');
  context.stderr.write(`${title}\n${text}\n`);
}

/** `{ a: 1, b: 2 }` -> `a 1, b 2`. */
export function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? 'none' : entries.map(([name, n]) => `${name} ${n}`).join(', ');
}
