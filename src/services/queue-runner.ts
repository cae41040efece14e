/**
 * The process-sqs pipeline: a pipeline, not a barrier.
 *
 *   N receive loops -> store micro-batches (up to S messages or T ms) -> processor -> acknowledgement
 *
 * Receivers keep fetching while fewer than `maxInFlight` messages are held; each message is
 * acknowledged as soon as its own store batch is done, never waiting for the rest of its receive.
 * Held messages get their visibility extended before it runs out (heartbeat). FIFO groups are
 * chained: a group's next message starts only after the previous one was stored.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SQS_MAX_BATCH } from '../config/constants.js';
import { describeError, isAppError } from '../utils/errors.js';
import { redactString, silentLogger, type Logger } from '../utils/logger.js';
import { MicroBatcher } from '../utils/micro-batcher.js';
import { decideAck, type AckPolicy } from './acknowledgement.js';
import {
  groupIdOf,
  receiveCountOf,
  type Outcome,
  type ProcessOptions,
  type QueueMessage,
} from './message-processor.js';

/** The queue operations the runner needs. `SqsQueue` implements it; tests may use a fake. */
export interface QueuePort {
  receive(options: {
    maxMessages: number;
    waitTimeSeconds: number;
    visibilityTimeoutSeconds: number;
    signal?: AbortSignal;
  }): Promise<QueueMessage[]>;
  delete(message: QueueMessage): Promise<{ ok: true } | { ok: false; error: string }>;
  changeVisibility(
    message: QueueMessage,
    seconds: number,
  ): Promise<{ ok: true } | { ok: false; error: string }>;
  deadLetter(message: QueueMessage, reason: string): Promise<{ ok: true } | { ok: false; error: string }>;
  extendVisibility(messages: readonly QueueMessage[], seconds: number): Promise<QueueMessage[]>;
  flush(): Promise<void>;
}

export interface ProcessorPort {
  process(messages: readonly QueueMessage[], options?: ProcessOptions): Promise<Outcome[]>;
}

export interface QueueRunnerOptions extends AckPolicy {
  queue: QueuePort;
  processor: ProcessorPort;
  /** FIFO queue: keep order within each MessageGroupId. */
  fifo: boolean;
  /** Concurrent ReceiveMessage loops. */
  receivers: number;
  /** Messages per ReceiveMessage (1-10). */
  batchSize: number;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  heartbeatIntervalMs: number;
  /** Messages held at once, from receive to outcome. */
  maxInFlight: number;
  /** Stop once a receive comes back empty. */
  untilEmpty: boolean;
  maxMessages?: number;
  maxDurationMs?: number;
  /** After a signal or --max-duration: how long in-flight work may take before it is released. */
  shutdownTimeoutMs: number;
  storeBatchSize: number;
  storeBatchWaitMs: number;
  /** Aborted on SIGINT/SIGTERM: stop receiving, release unstarted messages, finish in-flight work. */
  signal?: AbortSignal;
  logger?: Logger;
}

export type StopReason =
  | 'queue-empty'
  | 'signal'
  | 'max-messages'
  | 'max-duration'
  | 'receive-error'
  /** --until-empty only: every store batch kept failing with transient errors. */
  | 'store-unavailable';

export interface RunCounts {
  received: number;
  stored: number;
  archived: number;
  /** Permanent failures (bad JSON, schema, refused by a store). */
  rejected: number;
  /** Of the rejected, how many reached the DLQ (and were deleted). */
  deadLettered: number;
  /** Transient failures, left on the queue with a backoff. */
  failed: number;
  /** Given back unprocessed (shutdown, FIFO predecessor failed). */
  released: number;
  deleted: number;
  /** Acknowledgements SQS refused (the message will be redelivered; stores are idempotent). */
  ackErrors: number;
  /** Visibility extensions sent by the heartbeat. */
  heartbeats: number;
}

export interface RunResult extends RunCounts {
  stopReason: StopReason;
  durationMs: number;
  /** The error that stopped receiving, when `stopReason` is `receive-error`. */
  error?: string;
}

interface Held {
  message: QueueMessage;
  visibleUntil: number;
  settled: boolean;
  /**
   * Settled, and its acknowledgement (a delete, or a DLQ copy then a delete) is still on its way:
   * the heartbeat keeps it hidden until then. Acknowledgements that set a visibility of their own
   * (a backoff, a release) clear this, so the heartbeat never overrides them.
   */
  keepHidden?: boolean;
}

const RECEIVE_ERROR_BACKOFF_MS = [250, 1000, 2000, 5000, 10_000, 20_000];
/** In --until-empty mode, give up receiving after this many consecutive failed receives. */
const UNTIL_EMPTY_RECEIVE_ATTEMPTS = 5;
/** Receiving pauses after a store batch failed entirely: 1 s, doubling, up to 30 s. */
const STORE_OUTAGE_PAUSE_MS = { first: 1000, max: 30_000 };
/** On a signal, receives in flight may finish for this long before they are aborted. */
const RECEIVE_ABORT_GRACE_MS = 1000;
/** How long past its backoff a failed FIFO message keeps later messages of its group waiting. */
const FIFO_BLOCK_GRACE_MS = 5000;
/** In --until-empty mode, stop after this many consecutive store batches failed entirely. */
const UNTIL_EMPTY_STORE_ATTEMPTS = 4;

export class QueueRunner {
  private readonly o: QueueRunnerOptions;
  private readonly logger: Logger;
  private readonly store: MicroBatcher<QueueMessage, Outcome>;
  /** Aborts receive requests (after a grace on a signal). */
  private readonly stopReceiving = new AbortController();
  /** Aborted on any stop: ends pauses at once. */
  private readonly stopped = new AbortController();
  private readonly held = new Map<string, Held>();
  private readonly groupTails = new Map<string, Promise<Outcome>>();
  /** FIFO groups waiting for a message that failed: later messages of the group must not overtake it. */
  private readonly blockedGroups = new Map<string, { messageId: string; until: number }>();
  private readonly work = new Set<Promise<void>>();
  private readonly acks = new Set<Promise<void>>();
  private capacityWaiters: Array<() => void> = [];
  private inFlight = 0;
  private reserved = 0;
  private stopReason: StopReason | undefined;
  private fatalError: string | undefined;
  private releasing = false;
  /** Consecutive store batches in which every message failed transiently (a store outage). */
  private storeOutageStreak = 0;
  /** Failed store batches counted so far: a batch counts only if none was counted while it ran. */
  private outagesCounted = 0;
  private pausedUntil = 0;
  private readonly counts: RunCounts = {
    received: 0,
    stored: 0,
    archived: 0,
    rejected: 0,
    deadLettered: 0,
    failed: 0,
    released: 0,
    deleted: 0,
    ackErrors: 0,
    heartbeats: 0,
  };

  constructor(options: QueueRunnerOptions) {
    this.o = options;
    this.logger = options.logger ?? silentLogger;
    this.store = new MicroBatcher({
      maxSize: options.storeBatchSize,
      maxDelayMs: options.storeBatchWaitMs,
      run: async (batch) => {
        const countedBefore = this.outagesCounted;
        const outcomes = await options.processor.process(batch, { fifo: options.fifo });
        this.observeStores(outcomes, countedBefore);
        return outcomes;
      },
    });
  }

  /** Live counters, for progress logs and tests. */
  get snapshot(): Readonly<RunCounts> {
    return { ...this.counts };
  }

  async run(): Promise<RunResult> {
    const started = Date.now();
    const onSignal = () => this.stop('signal');
    if (this.o.signal?.aborted) this.stop('signal');
    this.o.signal?.addEventListener('abort', onSignal, { once: true });
    const durationTimer =
      this.o.maxDurationMs === undefined
        ? undefined
        : setTimeout(() => this.stop('max-duration'), this.o.maxDurationMs);
    const heartbeat = setInterval(() => void this.heartbeat(), this.o.heartbeatIntervalMs);
    try {
      await Promise.all(Array.from({ length: this.o.receivers }, (_, i) => this.receiveLoop(i)));
      await this.finishInFlight();
      await this.o.queue.flush();
      await Promise.allSettled([...this.acks]);
    } finally {
      clearInterval(heartbeat);
      if (durationTimer) clearTimeout(durationTimer);
      this.o.signal?.removeEventListener('abort', onSignal);
    }
    const result: RunResult = {
      ...this.counts,
      stopReason: this.stopReason ?? 'signal',
      durationMs: Date.now() - started,
    };
    if (this.fatalError !== undefined) result.error = this.fatalError;
    return result;
  }

  /** Stops receiving. A signal also aborts long polls and releases messages nobody started on. */
  stop(reason: StopReason): void {
    if (this.stopReason === undefined) {
      this.stopReason = reason;
      this.stopped.abort();
      this.logger.info('receiving_stopped', { reason, held: this.held.size });
    }
    if (reason === 'signal') {
      this.releaseUnstarted();
      // Receives in flight get a moment to return, and what they bring is released at once. A
      // receive aborted after SQS picked its messages would hide them for the whole visibility
      // timeout (delayed, not lost); a long poll still waiting after the grace found nothing.
      const timer = setTimeout(() => this.stopReceiving.abort(), RECEIVE_ABORT_GRACE_MS);
      timer.unref();
    }
    this.wakeCapacityWaiters();
  }

  private wakeCapacityWaiters(): void {
    for (const wake of this.capacityWaiters) wake();
    this.capacityWaiters = [];
  }

  private get stopping(): boolean {
    return this.stopReason !== undefined;
  }

  private releaseUnstarted(): void {
    this.releasing = true;
    const released = this.store.cancelPending(() => ({ status: 'released', reason: 'shutting down' }));
    if (released.length > 0) this.logger.info('unstarted_released', { messages: released.length });
  }

  /**
   * A store batch in which every message failed transiently means a store is down. Receiving
   * more would only cycle messages through the queue, spend requests and raise their receive
   * counts towards the redrive limit, so receiving pauses (1 s, doubling, up to 30 s) until a
   * batch gets through. A --until-empty run gives up after a few such batches. Batches already
   * under way when a failure was counted saw the same outage, so they do not count again: a
   * 5-second blip that fails four concurrent batches is one failure, not four.
   */
  private observeStores(outcomes: readonly Outcome[], countedBefore: number): void {
    if (outcomes.some((o) => o.status === 'stored')) {
      if (this.storeOutageStreak > 0) this.logger.info('stores_recovered', { after: this.storeOutageStreak });
      this.storeOutageStreak = 0;
      this.pausedUntil = 0;
      return;
    }
    if (outcomes.length === 0 || !outcomes.every((o) => o.status === 'failed')) return;
    if (countedBefore !== this.outagesCounted) return;
    this.outagesCounted++;
    this.storeOutageStreak++;
    const pauseMs = Math.min(
      STORE_OUTAGE_PAUSE_MS.first * 2 ** (this.storeOutageStreak - 1),
      STORE_OUTAGE_PAUSE_MS.max,
    );
    this.pausedUntil = Date.now() + pauseMs;
    this.logger.warn('stores_unavailable', { batchesFailed: this.storeOutageStreak, pauseMs });
    if (this.o.untilEmpty && this.storeOutageStreak >= UNTIL_EMPTY_STORE_ATTEMPTS)
      this.stop('store-unavailable');
  }

  private async receiveLoop(receiver: number): Promise<void> {
    const unit = Math.min(this.o.batchSize, this.o.maxInFlight);
    let failures = 0;
    let emptyStreak = 0;
    while (!this.stopping) {
      const paused = this.pausedUntil - Date.now();
      if (paused > 0) {
        await this.pause(paused);
        continue;
      }
      const want = await this.acquire(unit);
      if (this.stopping) {
        this.reserved -= want;
        break;
      }
      // An outage found while this receiver waited for room (the batch that failed freed it)
      // pauses it too: the pause is checked again before receiving.
      if (this.pausedUntil > Date.now()) {
        this.reserved -= want;
        continue;
      }
      if (want === 0) {
        // Other receivers hold the rest of the quota; stop only once it was all received.
        if (this.reserved === 0) this.stop('max-messages');
        else await sleep(10);
        continue;
      }
      let messages: QueueMessage[];
      try {
        messages = await this.o.queue.receive({
          maxMessages: want,
          waitTimeSeconds: this.o.waitTimeSeconds,
          visibilityTimeoutSeconds: this.o.visibilityTimeoutSeconds,
          signal: this.stopReceiving.signal,
        });
        failures = 0;
      } catch (error) {
        this.reserved -= want;
        this.wakeCapacityWaiters();
        failures++;
        const retryable = isAppError(error) ? error.retryable : true;
        this.logger.warn('receive_failed', {
          receiver,
          attempt: failures,
          retryable,
          error: describeError(error),
        });
        if (!retryable || (this.o.untilEmpty && failures >= UNTIL_EMPTY_RECEIVE_ATTEMPTS)) {
          this.fatalError = describeError(error);
          this.stop('receive-error');
          break;
        }
        await this.pause(
          RECEIVE_ERROR_BACKOFF_MS[Math.min(failures, RECEIVE_ERROR_BACKOFF_MS.length) - 1] ?? 20_000,
        );
        continue;
      }
      this.reserved -= want;
      for (const message of messages) this.accept(message);
      if (messages.length < want) this.wakeCapacityWaiters();
      if (messages.length === 0) {
        emptyStreak++;
        // A long poll that returns nothing saw an empty queue; short polls sample, so need three.
        if (this.o.untilEmpty && (this.o.waitTimeSeconds > 0 || emptyStreak >= 3)) {
          // Only if we hold nothing: messages we hold (and, on a FIFO queue, every later message
          // of their groups) are invisible to the poll, and may come back or unlock more.
          if (this.inFlight === 0 && this.acks.size === 0) this.stop('queue-empty');
          else await this.untilIdle();
        }
      } else {
        emptyStreak = 0;
      }
      if (this.o.maxMessages !== undefined && this.counts.received >= this.o.maxMessages)
        this.stop('max-messages');
    }
  }

  /**
   * Waits until `unit` more messages fit under --max-in-flight, then reserves them (and their
   * share of the --max-messages quota) in the same synchronous step, so that concurrent receivers
   * cannot all pass the check before any of them reserved.
   */
  private async acquire(unit: number): Promise<number> {
    while (!this.stopping && this.inFlight + this.reserved + unit > this.o.maxInFlight) {
      await new Promise<void>((resolve) => this.capacityWaiters.push(resolve));
    }
    const left =
      this.o.maxMessages === undefined ? unit : this.o.maxMessages - this.counts.received - this.reserved;
    const want = Math.max(0, Math.min(unit, left));
    this.reserved += want;
    return want;
  }

  /** Waits until no message is held and no acknowledgement is pending, or the run stops. */
  private async untilIdle(): Promise<void> {
    while (!this.stopping && (this.inFlight > 0 || this.acks.size > 0)) {
      await Promise.race([Promise.allSettled([...this.work, ...this.acks]), this.pause(1000)]);
    }
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopped.signal }).catch(() => undefined);
  }

  private accept(message: QueueMessage): void {
    this.counts.received++;
    this.inFlight++;
    const entry: Held = {
      message,
      visibleUntil: Date.now() + this.o.visibilityTimeoutSeconds * 1000,
      settled: false,
    };
    this.held.set(message.receiptHandle, entry);
    const blocked = this.o.fifo ? this.blockedBy(message) : undefined;
    const outcome: Promise<Outcome> = this.releasing
      ? Promise.resolve({ status: 'released', reason: 'shutting down' })
      : blocked
        ? Promise.resolve(blocked)
        : this.o.fifo
          ? this.chain(message)
          : this.store.add(message);
    const done = outcome
      .catch((error: unknown): Outcome => ({ status: 'failed', reason: describeError(error) }))
      .then((result) => this.settle(entry, result));
    this.work.add(done);
    void done.finally(() => this.work.delete(done));
  }

  /**
   * FIFO: while an earlier message of the group waits out its backoff, a later one must not be
   * stored before it. SQS itself withholds a group while one of its messages is in flight, but
   * some emulators do not, so the runner enforces it too and hands the message back until then.
   */
  private blockedBy(message: QueueMessage): Outcome | undefined {
    const group = groupIdOf(message) ?? '';
    const block = this.blockedGroups.get(group);
    if (block === undefined) return undefined;
    const now = Date.now();
    if (block.messageId === message.messageId || now >= block.until) {
      this.blockedGroups.delete(group);
      return undefined;
    }
    return {
      status: 'released',
      reason: `group ${group} waits for message ${block.messageId}`,
      delaySeconds: Math.max(1, Math.ceil((block.until - now) / 1000)),
    };
  }

  private blockGroup(message: QueueMessage, seconds: number): void {
    const group = groupIdOf(message);
    if (!this.o.fifo || group === undefined) return;
    // The grace covers a blocker that becomes visible a little after its successors were handed
    // back; the block ends early as soon as the blocker itself is received again.
    const until = Date.now() + seconds * 1000 + FIFO_BLOCK_GRACE_MS;
    this.blockedGroups.set(group, { messageId: message.messageId, until });
  }

  /** FIFO: a message starts only after its group's previous one was stored; otherwise it is released. */
  private chain(message: QueueMessage): Promise<Outcome> {
    const group = groupIdOf(message) ?? '';
    const previous = this.groupTails.get(group);
    const next = (previous ?? Promise.resolve<Outcome | undefined>(undefined)).then(
      (before): Promise<Outcome> | Outcome => {
        if (before !== undefined && before.status !== 'stored') {
          return { status: 'released', reason: `an earlier message of group ${group} was ${before.status}` };
        }
        if (this.releasing) return { status: 'released', reason: 'shutting down' };
        return this.store.add(message);
      },
    );
    const tail = next.catch((error: unknown): Outcome => ({
      status: 'failed',
      reason: describeError(error),
    }));
    this.groupTails.set(group, tail);
    void tail.then(() => {
      if (this.groupTails.get(group) === tail) this.groupTails.delete(group);
    });
    return next;
  }

  private settle(entry: Held, outcome: Outcome): void {
    if (entry.settled) return;
    entry.settled = true;
    this.inFlight--;
    this.wakeCapacityWaiters();
    this.count(outcome);
    const ack = this.acknowledge(entry, outcome).catch((error: unknown) => {
      this.counts.ackErrors++;
      this.logger.error('ack_failed', { messageId: entry.message.messageId, error: describeError(error) });
    });
    this.acks.add(ack);
    void ack.finally(() => {
      this.acks.delete(ack);
      this.held.delete(entry.message.receiptHandle);
    });
  }

  private count(outcome: Outcome): void {
    switch (outcome.status) {
      case 'stored':
        this.counts.stored++;
        if (outcome.archived) this.counts.archived++;
        break;
      case 'rejected':
        this.counts.rejected++;
        break;
      case 'failed':
        this.counts.failed++;
        break;
      case 'released':
        this.counts.released++;
        break;
    }
  }

  /** Carries out the acknowledgement contract (see acknowledgement.ts) for one message. */
  private async acknowledge(entry: Held, outcome: Outcome): Promise<void> {
    const message = entry.message;
    const action = decideAck(outcome, receiveCountOf(message), this.o);
    entry.keepHidden = action.kind === 'delete' || action.kind === 'dead-letter';
    const log = { messageId: message.messageId };
    switch (action.kind) {
      case 'delete':
        return this.deleteMessage(message);
      case 'dead-letter': {
        // The reason may quote a driver's error, and the DLQ is read by more people than the logs.
        const sent = await this.o.queue.deadLetter(message, redactString(action.reason));
        if (sent.ok) {
          this.counts.deadLettered++;
          this.logger.info('message_dead_lettered', { ...log, reason: action.reason });
          return this.deleteMessage(message);
        }
        // Not in the DLQ, so it must not be deleted: hide it and let the next receive try again.
        this.logger.error('dead_letter_failed', { ...log, error: sent.error });
        const seconds = Math.round(this.o.poisonBackoffMs / 1000);
        this.blockGroup(message, seconds);
        return this.setVisibility(entry, seconds);
      }
      case 'retry-later':
        this.logger.debug('message_retry_later', {
          ...log,
          seconds: action.visibilityTimeoutSeconds,
          reason: action.reason,
        });
        this.blockGroup(message, action.visibilityTimeoutSeconds);
        return this.setVisibility(entry, action.visibilityTimeoutSeconds);
      case 'release':
        return this.setVisibility(entry, action.visibilityTimeoutSeconds);
    }
  }

  private async deleteMessage(message: QueueMessage): Promise<void> {
    const result = await this.o.queue.delete(message);
    if (result.ok) {
      this.counts.deleted++;
      return;
    }
    this.counts.ackErrors++;
    this.logger.warn('delete_failed', { messageId: message.messageId, error: result.error });
  }

  /**
   * Sets the visibility an acknowledgement decided. The heartbeat leaves the message alone from
   * now on; if one of its requests holding this message is already under way, this one goes
   * after it, so that the heartbeat's extension cannot land last and undo a backoff or a release.
   */
  private async setVisibility(entry: Held, seconds: number): Promise<void> {
    const message = entry.message;
    entry.keepHidden = false;
    const extending = this.extending;
    if (extending?.messages.has(message)) await extending.done.catch(() => undefined);
    const result = await this.o.queue.changeVisibility(message, seconds);
    if (result.ok) return;
    this.counts.ackErrors++;
    this.logger.warn('visibility_change_failed', {
      messageId: message.messageId,
      seconds,
      error: result.error,
    });
  }

  private heartbeatRunning = false;
  /** The heartbeat request under way, if any: which messages it extends, and its answer. */
  private extending: { messages: ReadonlySet<QueueMessage>; done: Promise<unknown> } | undefined;

  /**
   * Extends the visibility of held messages that would become visible before the next tick, 10
   * per request. Each request takes only messages still to be kept hidden at the moment it is
   * sent: one settled meanwhile may already have a backoff or a release of its own.
   */
  private async heartbeat(): Promise<void> {
    if (this.heartbeatRunning) return;
    this.heartbeatRunning = true;
    const stillHidden = (h: Held) => !h.settled || h.keepHidden === true;
    try {
      const horizon = Date.now() + this.o.heartbeatIntervalMs * 1.5 + 1000;
      const due = [...this.held.values()].filter((h) => stillHidden(h) && h.visibleUntil <= horizon);
      let refusedCount = 0;
      for (let start = 0; start < due.length; start += SQS_MAX_BATCH) {
        const slice = due.slice(start, start + SQS_MAX_BATCH).filter(stillHidden);
        if (slice.length === 0) continue;
        const sentAt = Date.now();
        const messages = slice.map((h) => h.message);
        const done = this.o.queue.extendVisibility(messages, this.o.visibilityTimeoutSeconds);
        this.extending = { messages: new Set(messages), done };
        let refused: Set<QueueMessage>;
        try {
          refused = new Set(await done);
        } finally {
          this.extending = undefined;
        }
        for (const h of slice) {
          if (!refused.has(h.message)) h.visibleUntil = sentAt + this.o.visibilityTimeoutSeconds * 1000;
        }
        this.counts.heartbeats += slice.length - refused.size;
        refusedCount += refused.size;
      }
      if (refusedCount > 0) this.logger.warn('heartbeat_refused', { messages: refusedCount });
    } catch (error) {
      this.logger.warn('heartbeat_failed', { error: describeError(error) });
    } finally {
      this.heartbeatRunning = false;
    }
  }

  /**
   * Waits for in-flight work. After a signal or --max-duration the wait is bounded by
   * --shutdown-timeout; what is still running then is released (its writes are idempotent, so
   * finishing late is harmless).
   */
  private async finishInFlight(): Promise<void> {
    const all = (async () => {
      while (this.work.size > 0) await Promise.allSettled([...this.work]);
    })();
    const cancel = new AbortController();
    // The clock starts now after a signal or --max-duration, or when a signal arrives later.
    const bounded = this.stopReason === 'signal' || this.stopReason === 'max-duration';
    const signalled = bounded
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          if (this.o.signal?.aborted) resolve();
          this.o.signal?.addEventListener('abort', () => resolve(), { once: true, signal: cancel.signal });
        });
    const deadline = signalled.then(() =>
      sleep(this.o.shutdownTimeoutMs, true, { signal: cancel.signal }).catch(() => false),
    );
    const timedOut = await Promise.race([all.then(() => false), deadline]);
    cancel.abort();
    if (!timedOut) return;
    this.releaseUnstarted();
    const stuck = [...this.held.values()].filter((h) => !h.settled);
    this.logger.warn('shutdown_timeout', { releasing: stuck.length, timeoutMs: this.o.shutdownTimeoutMs });
    for (const h of stuck) this.settle(h, { status: 'released', reason: 'shutdown timeout' });
  }
}
