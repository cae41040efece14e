import { compileSchema } from '../../../src/utils/file-reader.js';
import { archiveKeyFor, MessageProcessor } from '../../../src/services/message-processor.js';
import { parseArchiveRule } from '../../../src/services/archive-rule.js';
import { MemorySink, queueMessage } from '../../helpers/factories.js';

const validator = compileSchema<unknown>(
  { type: 'object', required: ['id'], properties: { id: { type: 'string' }, amount: { type: 'number' } } },
  'test',
);

function processor(sinks: MemorySink[], extra: { idField?: string; archiveWhen?: string } = {}) {
  return new MessageProcessor({
    sinks,
    validator,
    ...(extra.idField ? { idField: extra.idField } : {}),
    ...(extra.archiveWhen ? { archive: { rule: parseArchiveRule(extra.archiveWhen), prefix: 'arch' } } : {}),
  });
}

describe('MessageProcessor', () => {
  it('stores valid messages in every sink and rejects bad JSON and schema violations with the reason', async () => {
    // Prepare
    const a = new MemorySink('a');
    const b = new MemorySink('b');
    const messages = [
      queueMessage({ id: 'x1', amount: 5 }),
      queueMessage('{"id": "x2",'),
      queueMessage({ id: 3 }),
      queueMessage({ id: 'x4' }),
    ];

    // Act
    const outcomes = await processor([a, b]).process(messages);

    // Assess
    expect(outcomes.map((o) => o.status)).toEqual(['stored', 'rejected', 'rejected', 'stored']);
    expect(outcomes[1]).toMatchObject({ reason: expect.stringMatching(/^invalid JSON: /) });
    expect(outcomes[2]).toEqual({ status: 'rejected', reason: 'schema: /id: must be string (rule "type")' });
    expect([...a.records.keys()]).toEqual([messages[0]?.messageId, messages[3]?.messageId]);
    expect([...b.records.keys()]).toEqual([...a.records.keys()]);
    expect(a.batches).toHaveLength(1);
  });

  it('keys by --id-field and rejects a message without it', async () => {
    const sink = new MemorySink();
    const outcomes = await processor([sink], { idField: 'id' }).process([
      queueMessage({ id: 'order-1' }),
      queueMessage({ amount: 1, id: '' }),
    ]);
    expect(outcomes[0]).toEqual({ status: 'stored', key: 'order-1', archived: false });
    expect(outcomes[1]).toEqual({
      status: 'rejected',
      reason: 'id field "id" is missing, empty or not a string or number',
    });
  });

  it('writes one record per key when a batch holds the same key twice, and both messages share the result', async () => {
    const sink = new MemorySink();
    const outcomes = await processor([sink], { idField: 'id' }).process([
      queueMessage({ id: 'dup', amount: 1 }),
      queueMessage({ id: 'dup', amount: 2 }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['stored', 'stored']);
    expect(sink.batches).toEqual([['dup']]);
    expect(sink.records.get('dup')?.body).toEqual({ id: 'dup', amount: 2 });
  });

  it('a message is stored only when every sink confirmed it; transient beats nothing, permanent beats transient', async () => {
    const ok = new MemorySink('ok');
    const flaky = new MemorySink('flaky', (r) =>
      (r.body as { id: string }).id === 't' ? { error: 'timeout', retryable: true } : undefined,
    );
    const strict = new MemorySink('strict', (r) =>
      (r.body as { id: string }).id === 'p' ? { error: 'bad field name', retryable: false } : undefined,
    );
    const outcomes = await processor([ok, flaky, strict]).process([
      queueMessage({ id: 'fine' }),
      queueMessage({ id: 't' }),
      queueMessage({ id: 'p' }),
    ]);
    expect(outcomes).toEqual([
      expect.objectContaining({ status: 'stored' }),
      { status: 'failed', reason: 'flaky: timeout' },
      { status: 'rejected', reason: 'strict: bad field name' },
    ]);
  });

  it('a sink that throws fails its whole batch as transient', async () => {
    const broken = new MemorySink('broken');
    broken.throwWith = new Error('connection refused');
    const outcomes = await processor([broken]).process([
      queueMessage({ id: 'a' }),
      queueMessage({ id: 'b' }),
    ]);
    expect(outcomes).toEqual([
      { status: 'failed', reason: 'broken: connection refused' },
      { status: 'failed', reason: 'broken: connection refused' },
    ]);
  });

  it('gives archive keys only to records the rule selects, dated by the send time', async () => {
    const sink = new MemorySink();
    const sentAt = new Date('2026-01-05T23:59:59Z');
    const outcomes = await processor([sink], { idField: 'id', archiveWhen: 'amount>=100' }).process([
      queueMessage({ id: 'big/1', amount: 100 }, { sentAt }),
      queueMessage({ id: 'small', amount: 1 }, { sentAt }),
    ]);
    expect(outcomes[0]).toEqual({ status: 'stored', key: 'big/1', archived: true });
    expect(outcomes[1]).toEqual({ status: 'stored', key: 'small', archived: false });
    expect(sink.records.get('big/1')?.archiveKey).toBe('arch/2026/01/05/big%2F1.json');
    expect(sink.records.get('small')?.archiveKey).toBeUndefined();
  });

  it('archiveKeyFor is deterministic and handles an empty prefix', () => {
    const at = new Date('2026-12-03T10:00:00Z');
    expect(archiveKeyFor('', 'k', at)).toBe('2026/12/03/k.json');
    expect(archiveKeyFor('a/b', 'k k', at)).toBe('a/b/2026/12/03/k%20k.json');
  });

  it('keeps the SQS metadata on the record', async () => {
    const sink = new MemorySink();
    const message = queueMessage(
      { id: 'm' },
      { groupId: 'g1', receiveCount: 3, messageAttributes: { trace: { dataType: 'String', value: 't-1' } } },
    );
    await processor([sink]).process([message], { fifo: true });
    const record = sink.records.get(message.messageId);
    expect(record).toMatchObject({
      messageId: message.messageId,
      groupId: 'g1',
      receiveCount: 3,
      rawBody: '{"id":"m"}',
      sentAt: new Date('2026-12-03T10:00:00Z'),
      messageAttributes: { trace: { dataType: 'String', value: 't-1' } },
    });
    expect(record?.sequenceNumber).toMatch(/^\d{20}$/);
  });

  describe('FIFO', () => {
    it('writes each group in order, one message per group per wave', async () => {
      const sink = new MemorySink();
      const messages = [
        queueMessage({ id: 'a1' }, { groupId: 'A' }),
        queueMessage({ id: 'a2' }, { groupId: 'A' }),
        queueMessage({ id: 'b1' }, { groupId: 'B' }),
        queueMessage({ id: 'a3' }, { groupId: 'A' }),
      ];
      await processor([sink], { idField: 'id' }).process(messages, { fifo: true });
      expect(sink.batches).toEqual([['a1', 'b1'], ['a2'], ['a3']]);
    });

    it('after a failure, later messages of that group are released unprocessed; other groups go on', async () => {
      const sink = new MemorySink('s', (r) =>
        (r.body as { id: string }).id === 'a2' ? { error: 'down', retryable: true } : undefined,
      );
      const outcomes = await processor([sink], { idField: 'id' }).process(
        [
          queueMessage({ id: 'a1' }, { groupId: 'A' }),
          queueMessage({ id: 'a2' }, { groupId: 'A' }),
          queueMessage({ id: 'a3' }, { groupId: 'A' }),
          queueMessage({ id: 'b1' }, { groupId: 'B' }),
          queueMessage({ id: 'b2' }, { groupId: 'B' }),
        ],
        { fifo: true },
      );
      expect(outcomes.map((o) => o.status)).toEqual(['stored', 'failed', 'released', 'stored', 'stored']);
      expect(sink.records.has('a3')).toBe(false);
    });

    it('an invalid message also stops its group', async () => {
      const sink = new MemorySink();
      const outcomes = await processor([sink], { idField: 'id' }).process(
        [queueMessage('not json', { groupId: 'A' }), queueMessage({ id: 'a2' }, { groupId: 'A' })],
        { fifo: true },
      );
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'released']);
      expect(sink.records.size).toBe(0);
    });
  });
});
