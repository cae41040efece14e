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
import { FakeQueue, MemorySink, queueMessage } from '../../helpers/factories.js';

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
    const order: string[] = [];
    const processor: ProcessorPort = {
      async process(batch) {
        if (batch.some((m) => m.messageId === 'm-0'))
          await new Promise((resolve) => setTimeout(resolve, 200));
        order.push(...batch.map((m) => m.messageId));
        return batch.map((): Outcome => ({ status: 'stored', key: 'k', archived: false }));
      },
    };
    const queue = new FakeQueue(bodies(10));
    await runner(queue, processor, { receivers: 1, storeBatchSize: 1 }).run();
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

  it('on a signal: stops receiving, releases unstarted messages at once, finishes in-flight work', async () => {
    const queue = new FakeQueue(bodies(40));
    const signal = new AbortController();
    let calls = 0;
    const processor: ProcessorPort = {
      async process(batch) {
        calls++;
        if (calls === 1) {
          signal.abort();
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return batch.map((): Outcome => ({ status: 'stored', key: 'k', archived: false }));
      },
    };
    const result = await runner(queue, processor, {
      receivers: 1,
      storeBatchSize: 10,
      storeBatchWaitMs: 1000,
      untilEmpty: false,
      signal: signal.signal,
    }).run();
    expect(result.stopReason).toBe('signal');
    expect(result.stored).toBe(10);
    expect(result.released).toBe(result.received - 10);
    expect(queue.visibility.every((v) => v.seconds === 0)).toBe(true);
    expect(queue.deleted).toHaveLength(10);
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
    const hanging: ProcessorPort = { process: () => new Promise<Outcome[]>(() => undefined) };
    const queue = new FakeQueue(bodies(5));
    setTimeout(() => signal.abort(), 200);
    const result = await runner(queue, hanging, {
      signal: signal.signal,
      shutdownTimeoutMs: 50,
      maxMessages: 2,
      receivers: 1,
    }).run();
    expect(result).toMatchObject({ stopReason: 'max-messages', released: 2 });
    expect(queue.visibility.map((v) => v.seconds)).toEqual([0, 0]);
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
    expect(new Set(queue.extended)).toEqual(new Set(['m-0', 'm-1']));
    expect(result.heartbeats).toBeGreaterThanOrEqual(2);
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
