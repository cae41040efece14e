/** Factories for messages, records and in-memory fakes of our own interfaces (Sink, QueuePort). */
import { randomUUID } from 'node:crypto';
import type { ItemResult, MessageRecord, Sink } from '../../src/database/sink.js';
import type { QueueMessage } from '../../src/services/message-processor.js';
import type { QueuePort } from '../../src/services/queue-runner.js';

let sequence = 0;

export interface MessageOptions {
  messageId?: string;
  groupId?: string;
  receiveCount?: number;
  sentAt?: Date;
  messageAttributes?: QueueMessage['messageAttributes'];
}

/** A queue message as a driver would hand it over. Objects are serialised; strings are sent raw. */
export function queueMessage(body: unknown, options: MessageOptions = {}): QueueMessage {
  sequence++;
  const attributes: Record<string, string> = {
    SentTimestamp: String((options.sentAt ?? new Date('2026-12-03T10:00:00Z')).getTime()),
    ApproximateReceiveCount: String(options.receiveCount ?? 1),
  };
  if (options.groupId !== undefined) {
    attributes['MessageGroupId'] = options.groupId;
    attributes['SequenceNumber'] = String(sequence).padStart(20, '0');
  }
  return {
    messageId: options.messageId ?? randomUUID(),
    receiptHandle: `rh-${sequence}-${randomUUID()}`,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes,
    messageAttributes: options.messageAttributes ?? {},
    receivedAt: new Date('2026-12-03T10:00:01Z'),
  };
}

/** An in-memory sink. `fail(key)` decides a per-record failure; `throwWith` makes write() throw. */
export class MemorySink implements Sink {
  readonly records = new Map<string, MessageRecord>();
  readonly batches: string[][] = [];
  opened = false;
  closed = false;
  throwWith: Error | undefined;

  constructor(
    readonly name = 'memory',
    private readonly fail: (
      record: MessageRecord,
    ) => { error: string; retryable: boolean } | undefined = () => undefined,
    private readonly delayMs = 0,
  ) {}

  async open(): Promise<void> {
    this.opened = true;
  }

  async write(batch: readonly MessageRecord[]): Promise<ItemResult[]> {
    this.batches.push(batch.map((r) => r.key));
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.throwWith) throw this.throwWith;
    return batch.map((record): ItemResult => {
      const failure = this.fail(record);
      if (failure) return { key: record.key, ok: false, ...failure };
      this.records.set(record.key, record);
      return { key: record.key, ok: true };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

type Ack = { ok: true } | { ok: false; error: string };

/** A promise the test settles itself: a precondition reached, or a gate it opens. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * An in-memory queue with SQS's visibility semantics reduced to what the runner observes:
 * messages are handed out once; acknowledgements are recorded.
 */
export class FakeQueue implements QueuePort {
  readonly deleted: string[] = [];
  readonly visibility: Array<{ messageId: string; seconds: number }> = [];
  readonly deadLettered: Array<{ messageId: string; reason: string }> = [];
  /** Heartbeat extensions, with the visibility timeout each asked for. */
  readonly extended: Array<{ messageId: string; seconds: number }> = [];
  /** When each receive was called (Date.now()) and how many messages it returned. */
  readonly receiveLog: Array<{ at: number; messages: number }> = [];
  receives = 0;
  deadLetterFails = false;
  private waiters: Array<{ holds: () => boolean; resolve: () => void }> = [];

  constructor(readonly pending: QueueMessage[]) {}

  /**
   * Resolves once `holds()` is true, checked now and after every queue operation: lets a test
   * wait for an observable state (a delete, a visibility change) instead of sleeping.
   */
  until(holds: () => boolean): Promise<void> {
    if (holds()) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.push({ holds, resolve }));
  }

  private changed(): void {
    const ready = this.waiters.filter((w) => w.holds());
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const waiter of ready) waiter.resolve();
  }

  async receive(options: {
    maxMessages: number;
    waitTimeSeconds: number;
    signal?: AbortSignal;
  }): Promise<QueueMessage[]> {
    this.receives++;
    const batch = this.pending.splice(0, options.maxMessages);
    this.receiveLog.push({ at: Date.now(), messages: batch.length });
    this.changed();
    if (batch.length === 0 && options.waitTimeSeconds > 0) {
      // A long poll on an empty queue: wait a little (or until aborted), then return nothing.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        options.signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return batch;
  }

  async delete(message: QueueMessage): Promise<Ack> {
    this.deleted.push(message.messageId);
    this.changed();
    return { ok: true };
  }

  async changeVisibility(message: QueueMessage, seconds: number): Promise<Ack> {
    this.visibility.push({ messageId: message.messageId, seconds });
    this.changed();
    return { ok: true };
  }

  async deadLetter(message: QueueMessage, reason: string): Promise<Ack> {
    if (this.deadLetterFails) return { ok: false, error: 'DLQ unavailable' };
    this.deadLettered.push({ messageId: message.messageId, reason });
    this.changed();
    return { ok: true };
  }

  async extendVisibility(messages: readonly QueueMessage[], seconds: number): Promise<QueueMessage[]> {
    this.extended.push(...messages.map((m) => ({ messageId: m.messageId, seconds })));
    this.changed();
    return [];
  }

  async flush(): Promise<void> {}
}
