/**
 * Coalesces single items into batches: a batch leaves when it holds `maxSize` items or when its
 * first item has waited `maxDelayMs`. Each `add()` resolves with that item's own result, so a
 * caller never waits for a whole batch's slowest sibling beyond the one call they share.
 *
 * Used at every edge that bills or costs per call: SQS deletes, visibility changes and DLQ sends
 * (10 per request), and store writes (one bulk upsert per batch).
 */
export interface MicroBatcherOptions<T, R> {
  /** Items per batch. */
  maxSize: number;
  /** How long a partial batch waits for more items. 0 sends on the next tick. */
  maxDelayMs: number;
  /** Processes one batch; must return one result per item, in order. A throw rejects every item. */
  run: (items: T[]) => Promise<R[]>;
  /** Batches running at once. Default unlimited. */
  concurrency?: number;
}

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

export class MicroBatcher<T, R> {
  private queue: Array<Pending<T, R>> = [];
  private timer: NodeJS.Timeout | undefined;
  private running = 0;
  private readonly waiting: Array<Array<Pending<T, R>>> = [];
  private readonly idle = new Set<() => void>();

  constructor(private readonly options: MicroBatcherOptions<T, R>) {}

  /** Queues one item; resolves with its result once its batch ran. */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.options.maxSize) this.cut();
      else this.timer ??= setTimeout(() => this.cut(), this.options.maxDelayMs);
    });
  }

  /** Items queued but not yet handed to `run`. */
  get pendingCount(): number {
    return this.queue.length + this.waiting.reduce((n, batch) => n + batch.length, 0);
  }

  /** Batches currently inside `run`. */
  get runningCount(): number {
    return this.running;
  }

  /** Sends whatever is queued now, without waiting for the delay. */
  flushNow(): void {
    if (this.queue.length > 0) this.cut();
  }

  /** Resolves once nothing is queued or running. */
  async drain(): Promise<void> {
    this.flushNow();
    while (this.pendingCount > 0 || this.running > 0) {
      await new Promise<void>((resolve) => this.idle.add(resolve));
      this.flushNow();
    }
  }

  /**
   * Takes back every item not yet handed to `run`, resolving each with `resultFor(item)`.
   * Shutdown uses it to release messages nobody started working on.
   */
  cancelPending(resultFor: (item: T) => R): T[] {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const taken = [...this.waiting.flat(), ...this.queue];
    this.waiting.length = 0;
    this.queue = [];
    for (const pending of taken) pending.resolve(resultFor(pending.item));
    this.notifyIdle();
    return taken.map((pending) => pending.item);
  }

  private cut(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.queue.length > 0) {
      this.waiting.push(this.queue.splice(0, this.options.maxSize));
    }
    this.pump();
  }

  private pump(): void {
    const limit = this.options.concurrency ?? Number.POSITIVE_INFINITY;
    while (this.running < limit && this.waiting.length > 0) {
      const batch = this.waiting.shift() as Array<Pending<T, R>>;
      this.running++;
      void this.runBatch(batch);
    }
  }

  private async runBatch(batch: Array<Pending<T, R>>): Promise<void> {
    try {
      const results = await this.options.run(batch.map((p) => p.item));
      batch.forEach((pending, i) => {
        if (i < results.length) pending.resolve(results[i] as R);
        else pending.reject(new Error('batch returned fewer results than items'));
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.running--;
      this.pump();
      this.notifyIdle();
    }
  }

  private notifyIdle(): void {
    for (const resolve of this.idle) resolve();
    this.idle.clear();
  }
}
