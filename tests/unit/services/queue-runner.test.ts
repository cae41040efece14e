import { jest } from '@jest/globals';
import { compileSchema } from '../../../src/utils/file-reader.js';
import { AppError } from '../../../src/utils/errors.js';
import {
  MessageProcessor,
  type Outcome,
  type QueueMessage,
} from '../../../src/services/message-processor.js';
import {
  QueueRunner,
  type ProcessorPort,
  type QueueRunnerOptions,
} from '../../../src/services/queue-runner.js';
import { deferred, FakeQueue, MemorySink, queueMessage } from '../../helpers/factories.js';

const validator = compileSchema<unknown>({ type: 'object' }, 'test');

function runner(
  queue: FakeQueue,
  processor: ProcessorPort,
  overrides: Partial<QueueRunnerOptions> = {},
): QueueRunner {
  return new QueueRunner({
    queue,
    processor,
    fifo: false,
    hasDlq: true,
    receivers: 2,
    batchSize: 10,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 30,
    heartbeatIntervalMs: 10_000,
    maxInFlight: 50,
    untilEmpty: true,
    shutdownTimeoutMs: 5_000,
    retryBackoffMs: 10_000,
    retryBackoffMaxMs: 60_000,
    poisonBackoffMs: 3_600_000,
    storeBatchSize: 10,
    storeBatchWaitMs: 1,
    ...overrides,
  });
}

const stored = (batch: readonly QueueMessage[]): Outcome[] =>
  batch.map((): Outcome => ({ status: 'stored', key: 'k', archived: false }));

/**
 * Takes over the runner's heartbeat timer (the setInterval of `intervalMs`) so that the test
 * fires each beat itself. Other intervals run as usual.
 */
function manualHeartbeat(intervalMs: number): { beat(): void; restore(): void } {
  const realSetInterval = globalThis.setInterval;
  let tick: (() => void) | undefined;
  const spy = jest.spyOn(globalThis, 'setInterval').mockImplementation(((
    callback: () => void,
    ms?: number,
  ) => {
    if (ms !== intervalMs) return realSetInterval(callback, ms);
    tick = callback;
    return realSetInterval(() => undefined, 2 ** 30);
  }) as typeof setInterval);
  return {
    beat: () => {
      if (tick === undefined) throw new Error('the runner has not started its heartbeat');
      tick();
    },
    restore: () => spy.mockRestore(),
  };
}

function bodies(n: number, groupId?: string): QueueMessage[] {
  return Array.from({ length: n }, (_, i) =>
    queueMessage({ n: i }, { messageId: `${groupId ?? 'm'}-${i}`, ...(groupId ? { groupId } : {}) }),
  );
}

describe('QueueRunner', () => {
  it('drains the queue: stores, deletes each message once, stops when a receive comes back empty', async () => {
    // Prepare
    const messages = bodies(95);
    const queue = new FakeQueue([...messages]);
    const sink = new MemorySink();

    // Act
    const result = await runner(queue, new MessageProcessor({ sinks: [sink], validator })).run();

    // Assess
    expect(result).toMatchObject({
      stopReason: 'queue-empty',
      received: 95,
      stored: 95,
      deleted: 95,
      failed: 0,
    });
    expect(new Set(queue.deleted).size).toBe(95);
    expect(sink.records.size).toBe(95);
  });

  it('never holds more than --max-in-flight messages', async () => {
    let inProcess = 0;
    let peak = 0;
    const slow: ProcessorPort = {
      async process(batch) {
        inProcess += batch.length;
        peak = Math.max(peak, inProcess);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inProcess -= batch.length;
        return batch.map((): Outcome => ({ status: 'stored', key: 'k', archived: false }));
      },
    };
    const result = await runner(new FakeQueue(bodies(300)), slow, {
      receivers: 4,
      maxInFlight: 20,
      storeBatchSize: 5,
    }).run();
    expect(result.stored).toBe(300);
    expect(peak).toBeLessThanOrEqual(20);
    expect(peak).toBeGreaterThan(5);
  });

  it('a slow message does not hold back the rest of its receive (no per-batch barrier)', async () => {
    // Prepare: m-0 is stored only once the nine others of its receive were stored and deleted; a
    // barrier over the receive would never get there (and the test would time out).
    const order: string[] = [];
    const queue = new FakeQueue(bodies(10));
    const processor: ProcessorPort = {
      async process(batch) {
        if (batch.some((m) => m.messageId === 'm-0')) await queue.until(() => queue.deleted.length === 9);
        order.push(...batch.map((m) => m.messageId));
        return stored(batch);
      },
    };

    // Act
    await runner(queue, processor, { receivers: 1, storeBatchSize: 1 }).run();

    // Assess
    expect(queue.receiveLog[0]?.messages).toBe(10);
    expect(order[order.length - 1]).toBe('m-0');
    expect(queue.deleted.indexOf('m-0')).toBe(9);
  });

  it('applies the acknowledgement contract: DLQ then delete, backoff for transient failures', async () => {
    const queue = new FakeQueue([
      queueMessage('not json', { messageId: 'poison' }),
      queueMessage({ ok: true }, { messageId: 'fine' }),
      queueMessage({ flaky: true }, { messageId: 'flaky', receiveCount: 2 }),
    ]);
    const sink = new MemorySink('db', (r) =>
      (r.body as { flaky?: boolean }).flaky ? { error: 'timeout', retryable: true } : undefined,
    );
    const result = await runner(queue, new MessageProcessor({ sinks: [sink], validator })).run();
    expect(result).toMatchObject({
      received: 3,
      stored: 1,
      rejected: 1,
      deadLettered: 1,
      failed: 1,
      deleted: 2,
    });
    expect(queue.deadLettered).toEqual([
      { messageId: 'poison', reason: expect.stringMatching(/^invalid JSON/) },
    ]);
    expect(queue.deleted.sort()).toEqual(['fine', 'poison']);
    const backoff = queue.visibility.find((v) => v.messageId === 'flaky')?.seconds ?? 0;
    expect(backoff).toBeGreaterThanOrEqual(10);
    expect(backoff).toBeLessThanOrEqual(20);
  });

  it('does not delete a rejected message when the DLQ refuses it', async () => {
    const queue = new FakeQueue([queueMessage('not json', { messageId: 'poison' })]);
    queue.deadLetterFails = true;
    const result = await runner(queue, new MessageProcessor({ sinks: [new MemorySink()], validator })).run();
    expect(result.deadLettered).toBe(0);
    expect(queue.deleted).toEqual([]);
    expect(queue.visibility).toEqual([{ messageId: 'poison', seconds: 3600 }]);
  });

  it('FIFO: keeps each group in order and releases the rest of a group after a failure', async () => {
    const messages = [...bodies(5, 'A'), ...bodies(5, 'B')].sort((a, b) =>
      a.messageId.slice(2).localeCompare(b.messageId.slice(2)),
    );
    const queue = new FakeQueue(messages);
    const written: string[] = [];
    const sink = new MemorySink('db', (r) => {
      if (r.messageId === 'A-2') return { error: 'timeout', retryable: true };
      written.push(r.messageId);
      return undefined;
    });
    const result = await runner(queue, new MessageProcessor({ sinks: [sink], validator }), {
      fifo: true,
      receivers: 3,
    }).run();
    expect(written.filter((id) => id.startsWith('B'))).toEqual(['B-0', 'B-1', 'B-2', 'B-3', 'B-4']);
    expect(written.filter((id) => id.startsWith('A'))).toEqual(['A-0', 'A-1']);
    expect(result).toMatchObject({ stored: 7, failed: 1, released: 2 });
    expect(
      queue.visibility
        .filter((v) => v.seconds === 0)
        .map((v) => v.messageId)
        .sort(),
    ).toEqual(['A-3', 'A-4']);
  });

  it('FIFO: a later message of a group delivered while an earlier one waits out its backoff is handed back, not stored', async () => {
    // Prepare: A-1 fails and is hidden for its backoff; the queue (an emulator that does not
    // withhold the group) then delivers A-2 in a later receive.
    const queue = new FakeQueue([queueMessage({ n: 1 }, { messageId: 'A-1', groupId: 'A' })]);
    const sink = new MemorySink('db', (r) =>
      r.messageId === 'A-1' ? { error: 'timeout', retryable: true } : undefined,
    );
    const running = runner(queue, new MessageProcessor({ sinks: [sink], validator }), {
      fifo: true,
      receivers: 1,
      untilEmpty: false,
      maxMessages: 2,
    }).run();
    await queue.until(() => queue.visibility.some((v) => v.messageId === 'A-1'));

    // Act
    queue.pending.push(queueMessage({ n: 2 }, { messageId: 'A-2', groupId: 'A' }));
    const result = await running;

    // Assess
    expect(result).toMatchObject({ received: 2, stored: 0, failed: 1, released: 1 });
    expect(sink.batches.flat()).toEqual(['A-1']);
    const backoff = queue.visibility.find((v) => v.messageId === 'A-1')?.seconds ?? 0;
    const handedBack = queue.visibility.find((v) => v.messageId === 'A-2')?.seconds ?? 0;
    expect(backoff).toBeGreaterThanOrEqual(5);
    // Hidden until after A-1 is visible again (plus a grace of at most 5 s), so A-1 comes first.
    expect(handedBack).toBeGreaterThanOrEqual(backoff);
    expect(handedBack).toBeLessThanOrEqual(backoff + 5);
  });

  it('on a signal: stops receiving, releases unstarted messages at once, finishes in-flight work', async () => {
    // Prepare: one receive of 10 with store batches of 4: two batches start (and are held in the
    // store until the test lets them finish), m-8 and m-9 wait for a third batch that never fills.
    const queue = new FakeQueue(bodies(10));
    const signal = new AbortController();
    const bothStarted = deferred();
    const finish = deferred();
    const processed: string[] = [];
    const processor: ProcessorPort = {
      async process(batch) {
        processed.push(...batch.map((m) => m.messageId));
        if (processed.length === 8) bothStarted.resolve();
        await finish.promise;
        return stored(batch);
      },
    };
    const running = runner(queue, processor, {
      receivers: 1,
      storeBatchSize: 4,
      storeBatchWaitMs: 60_000,
      untilEmpty: false,
      signal: signal.signal,
    }).run();
    await bothStarted.promise;
    const receivesBefore = queue.receives;

    // Act
    signal.abort();
    await queue.until(() => queue.visibility.length === 2);
    finish.resolve();
    const result = await running;

    // Assess
    expect(result).toMatchObject({ stopReason: 'signal', received: 10, stored: 8, released: 2, deleted: 8 });
    expect(result.received).toBeGreaterThan(result.stored);
    expect(processed).toHaveLength(8);
    // Released before the in-flight batches finished, and visible again at once.
    expect(queue.visibility).toEqual([
      { messageId: 'm-8', seconds: 0 },
      { messageId: 'm-9', seconds: 0 },
    ]);
    expect(queue.deleted.sort()).toEqual(processed.sort());
    // At most the long poll already running when the signal came.
    expect(queue.receives).toBeLessThanOrEqual(receivesBefore + 1);
  });

  it('after --shutdown-timeout, work still running is released', async () => {
    const signal = new AbortController();
    const processor: ProcessorPort = {
      process: () => {
        signal.abort();
        return new Promise<Outcome[]>(() => undefined);
      },
    };
    const queue = new FakeQueue(bodies(3));
    const result = await runner(queue, processor, {
      receivers: 1,
      signal: signal.signal,
      shutdownTimeoutMs: 50,
    }).run();
    expect(result).toMatchObject({ stopReason: 'signal', released: 3, stored: 0 });
    expect(queue.visibility.map((v) => v.seconds)).toEqual([0, 0, 0]);
  });

  it('a signal during the final drain after --max-messages still bounds it by --shutdown-timeout', async () => {
    const signal = new AbortController();
    const inStore = deferred();
    const hanging: ProcessorPort = {
      process: () => {
        inStore.resolve();
        return new Promise<Outcome[]>(() => undefined);
      },
    };
    const queue = new FakeQueue(bodies(5));
    const r = runner(queue, hanging, {
      signal: signal.signal,
      shutdownTimeoutMs: 50,
      maxMessages: 2,
      receivers: 1,
    });
    const running = r.run();
    // Both messages are received and in the store, which never answers: the run is draining.
    await inStore.promise;
    expect(r.snapshot.received).toBe(2);
    signal.abort();
    const result = await running;
    expect(result).toMatchObject({ stopReason: 'max-messages', received: 2, released: 2 });
    expect(queue.visibility.map((v) => v.seconds)).toEqual([0, 0]);
  });

  it('--max-duration stops receiving, and work still running after --shutdown-timeout is released', async () => {
    // Prepare: a store that never answers, and more messages than one receive takes.
    const hanging: ProcessorPort = { process: () => new Promise<Outcome[]>(() => undefined) };
    const queue = new FakeQueue(bodies(30));

    // Act
    const result = await runner(queue, hanging, {
      receivers: 1,
      maxInFlight: 10,
      untilEmpty: false,
      maxDurationMs: 100,
      shutdownTimeoutMs: 50,
    }).run();

    // Assess
    expect(result).toMatchObject({ stopReason: 'max-duration', received: 10, stored: 0, released: 10 });
    expect(result.durationMs).toBeGreaterThanOrEqual(100);
    expect(queue.visibility.map((v) => v.seconds)).toEqual(Array.from({ length: 10 }, () => 0));
    expect(queue.pending).toHaveLength(20);
  }, 5_000);

  it('pauses receiving after a store batch failed entirely, and goes on once the stores answer', async () => {
    // Prepare: the first store batch fails as a whole (a store outage); later ones get through.
    const queue = new FakeQueue(bodies(10));
    let failedAt = 0;
    let calls = 0;
    const processor: ProcessorPort = {
      async process(batch) {
        calls++;
        if (calls > 1) return stored(batch);
        failedAt = Date.now();
        return batch.map((): Outcome => ({ status: 'failed', reason: 'store down' }));
      },
    };

    // Act: with room for one receive at a time, the next receive waits for the failed batch.
    const result = await runner(queue, processor, {
      receivers: 1,
      batchSize: 5,
      storeBatchSize: 5,
      maxInFlight: 5,
    }).run();

    // Assess
    expect(result).toMatchObject({ stopReason: 'queue-empty', received: 10, failed: 5, stored: 5 });
    expect(queue.receiveLog.slice(0, 2).map((r) => r.messages)).toEqual([5, 5]);
    // The pause after a first outage is 1 s.
    expect((queue.receiveLog[1]?.at ?? 0) - failedAt).toBeGreaterThanOrEqual(950);
  });

  it('--until-empty: store batches failed together by one blip count once, not once each', async () => {
    // Prepare: four batches of 10 are stored at once, and all four fail together.
    const queue = new FakeQueue(bodies(40));
    const allIn = deferred();
    let started = 0;
    const processor: ProcessorPort = {
      async process(batch) {
        if (++started === 4) allIn.resolve();
        await allIn.promise;
        return batch.map((): Outcome => ({ status: 'failed', reason: 'store down' }));
      },
    };

    // Act
    const result = await runner(queue, processor, {
      receivers: 4,
      batchSize: 10,
      storeBatchSize: 10,
      maxInFlight: 40,
    }).run();

    // Assess: one outage (a 1 s pause), then an empty queue, not a store-unavailable stop.
    expect(result).toMatchObject({ stopReason: 'queue-empty', received: 40, failed: 40 });
  });

  it('masks secrets in the reason it sends to the DLQ', async () => {
    const queue = new FakeQueue([queueMessage({ n: 1 }, { messageId: 'refused' })]);
    const sink = new MemorySink('db', () => ({
      error: 'refused by mongodb://app:hunter22-pw@db.example.com:27017/shop',
      retryable: false,
    }));
    const result = await runner(queue, new MessageProcessor({ sinks: [sink], validator })).run();
    expect(result).toMatchObject({ rejected: 1, deadLettered: 1 });
    const reason = queue.deadLettered[0]?.reason ?? '';
    expect(reason).toContain('mongodb://app:***@db.example.com:27017/shop');
    expect(reason).not.toContain('hunter22-pw');
  });

  it('--until-empty does not stop on an empty poll while it still holds messages', async () => {
    // A FIFO queue hides the rest of a group while we hold one of its messages: an empty poll then
    // says nothing about the queue. The run polls again once it holds nothing.
    const queue = new FakeQueue(bodies(1));
    const later = bodies(3).map((m) => ({ ...m, messageId: `later-${m.messageId}` }));
    const processor: ProcessorPort = {
      async process(batch) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        if (batch.some((m) => m.messageId === 'm-0')) queue.pending.push(...later);
        return batch.map((): Outcome => ({ status: 'stored', key: 'k', archived: false }));
      },
    };
    const result = await runner(queue, processor, { receivers: 1 }).run();
    expect(result).toMatchObject({ stopReason: 'queue-empty', received: 4, stored: 4 });
  });

  it('--max-messages receives exactly that many', async () => {
    const queue = new FakeQueue(bodies(100));
    const result = await runner(queue, new MessageProcessor({ sinks: [new MemorySink()], validator }), {
      receivers: 3,
      maxMessages: 25,
      untilEmpty: false,
    }).run();
    expect(result).toMatchObject({ stopReason: 'max-messages', received: 25, stored: 25 });
  });

  it('extends the visibility of messages held longer than the heartbeat horizon', async () => {
    const queue = new FakeQueue(bodies(2));
    const sink = new MemorySink('slow', () => undefined, 1500);
    const result = await runner(queue, new MessageProcessor({ sinks: [sink], validator }), {
      visibilityTimeoutSeconds: 2,
      heartbeatIntervalMs: 200,
    }).run();
    expect(result.stored).toBe(2);
    expect(new Set(queue.extended.map((e) => e.messageId))).toEqual(new Set(['m-0', 'm-1']));
    // Each extension is by the visibility timeout: 0 would hand the message to another consumer.
    expect(queue.extended.every((e) => e.seconds === 2)).toBe(true);
    expect(result.heartbeats).toBe(queue.extended.length);
    expect(result.heartbeats).toBeGreaterThanOrEqual(2);
  });

  it('a heartbeat extends only messages that would become visible before the next beat', async () => {
    // Prepare: a clock the test moves, and beats the test fires. Visibility 30 s, beats every
    // 10 s: a message is extended once its visibility ends within 10 × 1.5 + 1 = 16 s.
    const heartbeat = manualHeartbeat(10_000);
    let now = 1_000_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const early = queueMessage({ n: 1 }, { messageId: 'early' });
      const late = queueMessage({ n: 2 }, { messageId: 'late' });
      const queue = new FakeQueue([early]);
      const inStore = { early: deferred(), late: deferred() };
      const finish = deferred();
      const processor: ProcessorPort = {
        async process(batch) {
          for (const m of batch) inStore[m.messageId as keyof typeof inStore].resolve();
          await finish.promise;
          return stored(batch);
        },
      };
      const running = runner(queue, processor, {
        receivers: 1,
        batchSize: 1,
        visibilityTimeoutSeconds: 30,
        heartbeatIntervalMs: 10_000,
        untilEmpty: false,
        maxMessages: 2,
      }).run();
      await inStore.early.promise;
      now += 5_000;
      queue.pending.push(late);
      await inStore.late.promise;

      // Act: 15 s after the first receive. early is visible again in 15 s, late in 20 s.
      now += 10_000;
      heartbeat.beat();
      await queue.until(() => queue.extended.length > 0);
      finish.resolve();
      const result = await running;

      // Assess
      expect(queue.extended).toEqual([{ messageId: 'early', seconds: 30 }]);
      expect(result).toMatchObject({ stored: 2, heartbeats: 1 });
    } finally {
      clock.mockRestore();
      heartbeat.restore();
    }
  });

  it('a backoff decided while a heartbeat is extending the message goes after the extension', async () => {
    // Prepare: the heartbeat's request for m is held open until the test lets it answer; m
    // fails (a store outage) while it is open, so its backoff must not be overtaken by it.
    const heartbeat = manualHeartbeat(10_000);
    let now = 1_000_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const queue = new FakeQueue([queueMessage({ n: 1 }, { messageId: 'm' })]);
      const order: string[] = [];
      const gate = deferred();
      const extending = deferred();
      queue.extendVisibility = async (messages) => {
        extending.resolve();
        await gate.promise;
        order.push(...messages.map((m) => `extend ${m.messageId}`));
        return [];
      };
      const changeVisibility = queue.changeVisibility.bind(queue);
      queue.changeVisibility = async (message, seconds) => {
        order.push(`backoff ${message.messageId}`);
        return changeVisibility(message, seconds);
      };
      const inStore = deferred();
      const finish = deferred();
      const processor: ProcessorPort = {
        async process(batch) {
          inStore.resolve();
          await finish.promise;
          return batch.map((): Outcome => ({ status: 'failed', reason: 'store down' }));
        },
      };
      const running = runner(queue, processor, {
        receivers: 1,
        visibilityTimeoutSeconds: 30,
        untilEmpty: false,
        maxMessages: 1,
      }).run();
      await inStore.promise;

      // Act: the beat starts extending m; m fails meanwhile; then the extension answers.
      now += 15_000;
      heartbeat.beat();
      await extending.promise;
      finish.resolve();
      await new Promise((resolve) => setTimeout(resolve, 100));
      gate.resolve();
      const result = await running;

      // Assess
      expect(order).toEqual(['extend m', 'backoff m']);
      expect(queue.visibility).toEqual([{ messageId: 'm', seconds: expect.any(Number) }]);
      expect(queue.visibility[0]?.seconds).toBeGreaterThanOrEqual(5);
      expect(result).toMatchObject({ failed: 1, heartbeats: 1 });
    } finally {
      clock.mockRestore();
      heartbeat.restore();
    }
  });

  it('a settled message whose delete is still on its way stays hidden; one with a backoff is left alone', async () => {
    // Prepare: the delete of "slow" does not answer until the test lets it.
    const heartbeat = manualHeartbeat(10_000);
    let now = 1_000_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const queue = new FakeQueue([
        queueMessage({ n: 1 }, { messageId: 'slow' }),
        queueMessage({ n: 2 }, { messageId: 'failing' }),
      ]);
      const deleteGate = deferred();
      const deleting = deferred();
      const remove = queue.delete.bind(queue);
      queue.delete = async (message) => {
        deleting.resolve();
        await deleteGate.promise;
        return remove(message);
      };
      const processor: ProcessorPort = {
        async process(batch) {
          return batch.map((m): Outcome =>
            m.messageId === 'slow'
              ? { status: 'stored', key: 'slow', archived: false }
              : { status: 'failed', reason: 'store down' },
          );
        },
      };
      const running = runner(queue, processor, {
        receivers: 1,
        visibilityTimeoutSeconds: 30,
        untilEmpty: false,
        maxMessages: 2,
      }).run();
      await deleting.promise;
      await queue.until(() => queue.visibility.length === 1);

      // Act
      now += 15_000;
      heartbeat.beat();
      await queue.until(() => queue.extended.length > 0);
      deleteGate.resolve();
      const result = await running;

      // Assess
      expect(queue.extended).toEqual([{ messageId: 'slow', seconds: 30 }]);
      expect(queue.visibility.map((v) => v.messageId)).toEqual(['failing']);
      expect(result).toMatchObject({ stored: 1, failed: 1, deleted: 1 });
    } finally {
      clock.mockRestore();
      heartbeat.restore();
    }
  });

  it('stops with receive-error on a non-retryable receive failure', async () => {
    const queue = new FakeQueue([]);
    queue.receive = async () => {
      throw new AppError('SQS_ERROR', 'SQS ReceiveMessage failed: AccessDenied', { retryable: false });
    };
    const result = await runner(queue, new MessageProcessor({ sinks: [new MemorySink()], validator })).run();
    expect(result).toMatchObject({
      stopReason: 'receive-error',
      error: 'SQS ReceiveMessage failed: AccessDenied',
    });
  });
});
