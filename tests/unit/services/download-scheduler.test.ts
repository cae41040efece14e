import { runScheduled } from '../../../src/services/download/scheduler.js';

/** Tasks that finish when the test says so, recording what ran at the same time. */
function harness(hosts: string[]) {
  const running = new Set<number>();
  const started: number[] = [];
  const finishers = new Map<number, () => void>();
  let maxOverall = 0;
  const maxPerHost = new Map<string, number>();
  const task = (position: number) =>
    new Promise<void>((resolve) => {
      running.add(position);
      started.push(position);
      maxOverall = Math.max(maxOverall, running.size);
      const host = hosts[position] as string;
      const onHost = [...running].filter((p) => hosts[p] === host).length;
      maxPerHost.set(host, Math.max(maxPerHost.get(host) ?? 0, onHost));
      finishers.set(position, () => {
        running.delete(position);
        resolve();
      });
    });
  const finish = async (position: number) => {
    finishers.get(position)?.();
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { task, started, running, finish, settle, stats: () => ({ maxOverall, maxPerHost }) };
}

describe('runScheduled', () => {
  it('holds both caps and starts positions in list order', async () => {
    // Prepare
    const hosts = ['a', 'a', 'a', 'b', 'a', 'b', 'c', 'b'];
    const h = harness(hosts);

    // Act
    const done = runScheduled(hosts.length, (p) => hosts[p] as string, h.task, {
      concurrency: 4,
      perHost: 2,
    });
    await h.settle();

    // Assess: a busy host does not hold back the ones behind it.
    expect(h.started).toEqual([0, 1, 3, 5]);
    await h.finish(0);
    expect(h.started).toEqual([0, 1, 3, 5, 2]);
    await h.finish(3);
    expect(h.started).toEqual([0, 1, 3, 5, 2, 6]);
    for (const p of [1, 2, 5, 6, 4, 7]) await h.finish(p);
    await done;
    expect(h.started.sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(h.stats().maxOverall).toBe(4);
    expect(Math.max(...h.stats().maxPerHost.values())).toBe(2);
  });

  it('runs a long single-host list with at most perHost at once', async () => {
    const count = 500;
    let active = 0;
    let peak = 0;
    await runScheduled(
      count,
      () => 'only',
      async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((resolve) => setImmediate(resolve));
        active--;
      },
      { concurrency: 50, perHost: 3 },
    );
    expect(peak).toBe(3);
  });

  it('resolves at once for an empty list', async () => {
    await expect(
      runScheduled(
        0,
        () => 'x',
        async () => undefined,
        { concurrency: 1, perHost: 1 },
      ),
    ).resolves.toBe(undefined);
  });

  it('finishes every task before reporting a rejection', async () => {
    const finished: number[] = [];
    const run = runScheduled(
      5,
      () => 'h',
      async (p) => {
        await new Promise((resolve) => setImmediate(resolve));
        finished.push(p);
        if (p === 1) throw new Error('bug');
      },
      { concurrency: 2, perHost: 2 },
    );
    await expect(run).rejects.toThrow('bug');
    expect(finished.sort()).toEqual([0, 1, 2, 3, 4]);
  });
});
