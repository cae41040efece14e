import { jest } from '@jest/globals';
import { MicroBatcher } from '../../../src/utils/micro-batcher.js';

describe('MicroBatcher', () => {
  it('sends a full batch at once and gives each caller its own result', async () => {
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>({
      maxSize: 3,
      maxDelayMs: 10_000,
      run: async (items) => {
        batches.push(items);
        return items.map((n) => n * 10);
      },
    });
    const results = await Promise.all([1, 2, 3].map((n) => batcher.add(n)));
    expect(results).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('sends a partial batch after the delay', async () => {
    jest.useFakeTimers();
    try {
      const batches: number[][] = [];
      const batcher = new MicroBatcher<number, number>({
        maxSize: 10,
        maxDelayMs: 50,
        run: async (items) => {
          batches.push(items);
          return items;
        },
      });
      const pending = batcher.add(1);
      void batcher.add(2);
      await jest.advanceTimersByTimeAsync(49);
      expect(batches).toEqual([]);
      await jest.advanceTimersByTimeAsync(1);
      await expect(pending).resolves.toBe(1);
      expect(batches).toEqual([[1, 2]]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('respects the concurrency limit and drains', async () => {
    let running = 0;
    let peak = 0;
    const batcher = new MicroBatcher<number, number>({
      maxSize: 1,
      maxDelayMs: 0,
      concurrency: 2,
      run: async (items) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
        return items;
      },
    });
    for (let i = 0; i < 6; i++) void batcher.add(i);
    await batcher.drain();
    expect(peak).toBe(2);
    expect(batcher.pendingCount).toBe(0);
  });

  it('a throwing batch rejects each of its items', async () => {
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>({
      maxSize: 2,
      maxDelayMs: 0,
      run: async (items) => {
        batches.push(items);
        throw new Error('boom');
      },
    });
    const settled = await Promise.allSettled([batcher.add(1), batcher.add(2)]);
    expect(batches).toEqual([[1, 2]]);
    expect(settled).toEqual([
      { status: 'rejected', reason: new Error('boom') },
      { status: 'rejected', reason: new Error('boom') },
    ]);
  });

  it('rejects the items a batch returned no result for, and resolves the others', async () => {
    const batcher = new MicroBatcher<number, number>({
      maxSize: 2,
      maxDelayMs: 0,
      run: async (items) => items.slice(0, 1),
    });
    const settled = await Promise.allSettled([batcher.add(1), batcher.add(2)]);
    expect(settled).toEqual([
      { status: 'fulfilled', value: 1 },
      { status: 'rejected', reason: new Error('batch returned fewer results than items') },
    ]);
  });

  it('cancelPending hands back queued items with the given result and leaves running ones alone', async () => {
    let release: () => void = () => undefined;
    const batcher = new MicroBatcher<number, string>({
      maxSize: 1,
      maxDelayMs: 0,
      concurrency: 1,
      run: async (items) => {
        await new Promise<void>((resolve) => (release = resolve));
        return items.map(String);
      },
    });
    const first = batcher.add(1);
    const second = batcher.add(2);
    const third = batcher.add(3);
    await new Promise((resolve) => setImmediate(resolve));
    const taken = batcher.cancelPending((n) => `released ${n}`);
    release();
    expect(taken).toEqual([2, 3]);
    await expect(second).resolves.toBe('released 2');
    await expect(third).resolves.toBe('released 3');
    await expect(first).resolves.toBe('1');
  });
});
