/**
 * Starts one task per list position with at most `concurrency` in flight overall (a p-limit gate)
 * and at most `perHost` per host, in list order as far as the caps allow.
 *
 * Tasks are handed to p-limit only when it has a free slot, so its queue stays empty: queuing every
 * URL up front costs a closure and a promise each (about 4 KB per URL at peak, measured with 20,000
 * URLs), while a position waiting here costs one array slot. A busy host never blocks the list:
 * its positions wait in their own queue while other hosts proceed.
 */
import pLimit from 'p-limit';

export interface ScheduleOptions {
  concurrency: number;
  perHost: number;
}

/** A FIFO of positions with O(1) removal from the front. */
class PositionQueue {
  private items: number[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(position: number): void {
    this.items.push(position);
  }

  shift(): number | undefined {
    if (this.head >= this.items.length) return undefined;
    const position = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return position;
  }
}

/**
 * Runs `task(position)` for every position in `0..count-1`. `hostOf(position)` names the host a
 * position counts against. Resolves when every task settled; `task` must not reject (a rejection
 * is reported through the returned promise after the others finished).
 */
export function runScheduled(
  count: number,
  hostOf: (position: number) => string,
  task: (position: number) => Promise<void>,
  options: ScheduleOptions,
): Promise<void> {
  const limit = pLimit(options.concurrency);
  const hostActive = new Map<string, number>();
  const waiting = new Map<string, PositionQueue>();
  let cursor = 0;
  let settled = 0;
  // Counted here rather than read from p-limit, whose counters change a few microtasks after a
  // task settles; p-limit remains the gate that actually caps concurrency.
  let inFlight = 0;
  let firstError: unknown;

  return new Promise<void>((resolve, reject) => {
    const hasRoom = (host: string) => (hostActive.get(host) ?? 0) < options.perHost;

    const next = (): number | undefined => {
      for (const [host, queue] of waiting) {
        if (queue.size === 0) {
          waiting.delete(host);
          continue;
        }
        if (hasRoom(host)) return queue.shift();
      }
      while (cursor < count) {
        const position = cursor++;
        const host = hostOf(position);
        if (hasRoom(host)) return position;
        let queue = waiting.get(host);
        if (!queue) {
          queue = new PositionQueue();
          waiting.set(host, queue);
        }
        queue.push(position);
      }
      return undefined;
    };

    const pump = (): void => {
      while (inFlight < options.concurrency) {
        const position = next();
        if (position === undefined) break;
        const host = hostOf(position);
        hostActive.set(host, (hostActive.get(host) ?? 0) + 1);
        inFlight += 1;
        limit(() => task(position))
          .catch((error: unknown) => {
            firstError ??= error;
          })
          .finally(() => {
            hostActive.set(host, (hostActive.get(host) ?? 1) - 1);
            inFlight -= 1;
            settled += 1;
            if (settled === count) {
              if (firstError !== undefined) reject(firstError);
              else resolve();
              return;
            }
            pump();
          });
      }
    };

    if (count === 0) resolve();
    else pump();
  });
}
