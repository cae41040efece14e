/**
 * One batch of queue messages in, one outcome per message out. Transport-agnostic: the CLI loop
 * and the Lambda handler both drive this, so their behaviour cannot drift apart.
 *
 *   parse (JSON) -> validate (JSON Schema) -> key (MessageId or --id-field) -> archive key (rule)
 *   -> every sink in parallel -> stored only when every sink confirmed it
 */
import type { ItemResult, MessageRecord, Sink } from '../database/sink.js';
import { formatProblem, type Validator } from '../utils/file-reader.js';
import { describeError, isAppError } from '../utils/errors.js';
import { getPath, scalarToKey } from '../utils/json-path.js';
import { silentLogger, type Logger } from '../utils/logger.js';
import { matchesArchiveRule, type ArchiveRule } from './archive-rule.js';

/** A message as any driver (SQS receive loop, Lambda event) hands it over. */
export interface QueueMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  /** SQS system attributes: SentTimestamp, ApproximateReceiveCount, MessageGroupId... */
  attributes: Record<string, string>;
  /** User message attributes; binary values are base64. */
  messageAttributes: Record<string, { dataType: string; value: string }>;
  /** When this delivery was received. */
  receivedAt: Date;
}

/** What happened to one message. The acknowledgement contract turns this into an SQS action. */
export type Outcome =
  /** Every sink confirmed it: delete it. */
  | { status: 'stored'; key: string; archived: boolean }
  /** It can never be stored (bad JSON, schema, a store refused the document): dead-letter it. */
  | { status: 'rejected'; reason: string }
  /** A store is unavailable or timed out: try again later. */
  | { status: 'failed'; reason: string }
  /**
   * Not processed (shutdown, or an earlier message of its FIFO group did not succeed): give it
   * back, at once unless `delaySeconds` says otherwise.
   */
  | { status: 'released'; reason: string; delaySeconds?: number };

export interface ArchiveTarget {
  rule: ArchiveRule;
  /** Key prefix without leading or trailing slash; may be empty. */
  prefix: string;
}

export interface MessageProcessorOptions {
  /** The stores. A message counts as stored only when every one of them confirmed it. */
  sinks: readonly Sink[];
  validator: Validator<unknown>;
  /** Body field (dot path) holding the message key. Default: the SQS MessageId. */
  idField?: string;
  /** Which records get an S3 archive key. Default: none. */
  archive?: ArchiveTarget;
  /** Default: silent. */
  logger?: Logger;
}

export interface ProcessOptions {
  /**
   * FIFO semantics: messages of one MessageGroupId are stored in order, and once one of them does
   * not succeed, the later ones of that group are released unprocessed. Default false.
   */
  fifo?: boolean;
}

export function groupIdOf(message: QueueMessage): string | undefined {
  return message.attributes['MessageGroupId'];
}

export function receiveCountOf(message: QueueMessage): number {
  const n = Number(message.attributes['ApproximateReceiveCount']);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

function timestampOf(message: QueueMessage, name: string): Date | undefined {
  const raw = message.attributes[name];
  if (raw === undefined) return undefined;
  const ms = Number(raw);
  return Number.isFinite(ms) && ms > 0 ? new Date(ms) : undefined;
}

/** `prefix/YYYY/MM/DD/<key>.json`, dated by the send time in UTC, so a redelivery maps to the same key. */
export function archiveKeyFor(prefix: string, key: string, sentAt: Date): string {
  const yyyy = String(sentAt.getUTCFullYear());
  const mm = String(sentAt.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(sentAt.getUTCDate()).padStart(2, '0');
  // encodeURIComponent keeps a key with slashes in one path segment, and is deterministic.
  const path = `${yyyy}/${mm}/${dd}/${encodeURIComponent(key)}.json`;
  return prefix === '' ? path : `${prefix}/${path}`;
}

type Prepared = { ok: true; record: MessageRecord } | { ok: false; outcome: Outcome };

export class MessageProcessor {
  private readonly sinks: readonly Sink[];
  private readonly validator: Validator<unknown>;
  private readonly idField: string | undefined;
  private readonly archive: ArchiveTarget | undefined;
  private readonly logger: Logger;

  constructor(options: MessageProcessorOptions) {
    this.sinks = options.sinks;
    this.validator = options.validator;
    this.idField = options.idField;
    this.archive = options.archive;
    this.logger = options.logger ?? silentLogger;
  }

  /** Opens every sink; the first failure closes the ones already open and is rethrown. */
  async open(): Promise<void> {
    const opened: Sink[] = [];
    try {
      for (const sink of this.sinks) {
        await sink.open();
        opened.push(sink);
      }
    } catch (error) {
      await Promise.allSettled(opened.map((sink) => sink.close()));
      throw error;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.sinks.map((sink) => sink.close()));
  }

  /** Turns a raw message into a record, or a permanent rejection saying why. */
  prepare(message: QueueMessage): Prepared {
    let body: unknown;
    try {
      body = JSON.parse(message.body);
    } catch (error) {
      return {
        ok: false,
        outcome: { status: 'rejected', reason: `invalid JSON: ${(error as Error).message}` },
      };
    }
    const result = this.validator.validate(body);
    if (!result.ok) {
      const first = result.problems[0];
      const reason = first ? `schema: ${formatProblem(first)}` : 'schema: does not match';
      return { ok: false, outcome: { status: 'rejected', reason } };
    }
    let key = message.messageId;
    if (this.idField !== undefined) {
      const value = scalarToKey(getPath(body, this.idField));
      if (value === undefined) {
        const reason = `id field "${this.idField}" is missing, empty or not a string or number`;
        return { ok: false, outcome: { status: 'rejected', reason } };
      }
      key = value;
    }
    const sentAt = timestampOf(message, 'SentTimestamp') ?? message.receivedAt;
    const record: MessageRecord = {
      key,
      messageId: message.messageId,
      body,
      rawBody: message.body,
      attributes: message.attributes,
      messageAttributes: message.messageAttributes,
      sentAt,
      receivedAt: message.receivedAt,
      receiveCount: receiveCountOf(message),
    };
    const groupId = groupIdOf(message);
    if (groupId !== undefined) record.groupId = groupId;
    const sequenceNumber = message.attributes['SequenceNumber'];
    if (sequenceNumber !== undefined) record.sequenceNumber = sequenceNumber;
    const deduplicationId = message.attributes['MessageDeduplicationId'];
    if (deduplicationId !== undefined) record.deduplicationId = deduplicationId;
    const firstReceivedAt = timestampOf(message, 'ApproximateFirstReceiveTimestamp');
    if (firstReceivedAt !== undefined) record.firstReceivedAt = firstReceivedAt;
    if (this.archive && matchesArchiveRule(this.archive.rule, body)) {
      record.archiveKey = archiveKeyFor(this.archive.prefix, key, sentAt);
    }
    return { ok: true, record };
  }

  /** Processes a batch; returns one outcome per message, in input order. */
  async process(messages: readonly QueueMessage[], options: ProcessOptions = {}): Promise<Outcome[]> {
    const prepared = messages.map((message) => this.prepare(message));
    const outcomes: Array<Outcome | undefined> = prepared.map((p) => (p.ok ? undefined : p.outcome));
    const waves = options.fifo ? fifoWaves(messages) : [prepared.flatMap((p, i) => (p.ok ? [i] : []))];

    const stoppedGroups = new Map<string, string>();
    for (const wave of waves) {
      const live = wave.filter((index) => {
        const group = groupIdOf(messages[index] as QueueMessage) ?? '';
        const blocker = stoppedGroups.get(group);
        if (blocker === undefined) return true;
        outcomes[index] = { status: 'released', reason: `an earlier message of group ${group} ${blocker}` };
        return false;
      });
      await this.writeWave(live, prepared, outcomes);
      if (options.fifo) {
        for (const index of wave) {
          const outcome = outcomes[index];
          const group = groupIdOf(messages[index] as QueueMessage) ?? '';
          if (outcome && outcome.status !== 'stored' && !stoppedGroups.has(group)) {
            stoppedGroups.set(
              group,
              outcome.status === 'released' ? 'was released' : `was ${outcome.status}`,
            );
          }
        }
      }
    }
    return outcomes.map((outcome) => outcome ?? { status: 'failed', reason: 'not processed' });
  }

  /** Writes the records at `indexes` to every sink and fills in their outcomes. */
  private async writeWave(
    indexes: readonly number[],
    prepared: readonly Prepared[],
    outcomes: Array<Outcome | undefined>,
  ): Promise<void> {
    if (indexes.length === 0) return;
    // Two deliveries with one key in a batch (a duplicate send): store the last once, share the result.
    const byKey = new Map<string, MessageRecord>();
    for (const index of indexes) {
      const p = prepared[index];
      if (p?.ok) byKey.set(p.record.key, p.record);
    }
    const records = [...byKey.values()];
    const perSink = await Promise.all(this.sinks.map((sink) => this.safeWrite(sink, records)));
    const verdicts = new Map<string, Outcome>();
    for (const record of records) verdicts.set(record.key, combine(record, this.sinks, perSink));
    for (const index of indexes) {
      const p = prepared[index];
      if (!p?.ok) continue;
      const verdict = verdicts.get(p.record.key) as Outcome;
      outcomes[index] = verdict;
      if (verdict.status !== 'stored') {
        this.logger.warn('message_not_stored', {
          messageId: p.record.messageId,
          key: p.record.key,
          status: verdict.status,
          reason: verdict.reason,
        });
      }
    }
  }

  private async safeWrite(sink: Sink, records: readonly MessageRecord[]): Promise<Map<string, ItemResult>> {
    let results: ItemResult[];
    try {
      results = await sink.write(records);
    } catch (error) {
      // A sink should not throw, but if it does, nothing of this batch is confirmed.
      const retryable = isAppError(error) ? error.retryable : true;
      results = records.map((r) => ({ key: r.key, ok: false, error: describeError(error), retryable }));
    }
    return new Map(results.map((result) => [result.key, result]));
  }
}

function combine(
  record: MessageRecord,
  sinks: readonly Sink[],
  perSink: ReadonlyArray<Map<string, ItemResult>>,
): Outcome {
  const permanent: string[] = [];
  const transient: string[] = [];
  sinks.forEach((sink, i) => {
    const result = perSink[i]?.get(record.key);
    if (result === undefined) transient.push(`${sink.name}: returned no result`);
    else if (!result.ok) (result.retryable ? transient : permanent).push(`${sink.name}: ${result.error}`);
  });
  if (permanent.length > 0) return { status: 'rejected', reason: [...permanent, ...transient].join('; ') };
  if (transient.length > 0) return { status: 'failed', reason: transient.join('; ') };
  return { status: 'stored', key: record.key, archived: record.archiveKey !== undefined };
}

/**
 * Splits a FIFO batch into waves: wave n holds the n-th message of every group, in order. A
 * message rejected before any write (bad JSON) still takes its place, so its successors wait.
 */
function fifoWaves(messages: readonly QueueMessage[]): number[][] {
  const queues = new Map<string, number[]>();
  messages.forEach((message, index) => {
    const group = groupIdOf(message) ?? '';
    const queue = queues.get(group) ?? [];
    queue.push(index);
    queues.set(group, queue);
  });
  const waves: number[][] = [];
  for (const queue of queues.values()) {
    queue.forEach((index, position) => {
      (waves[position] ??= []).push(index);
    });
  }
  return waves;
}
