import { createHash } from 'node:crypto';
import { buildOutgoing, toBatches } from '../../../src/services/message-sender.js';
import type { SendMessagesSettings } from '../../../src/config/config-loader.js';
import { AppError } from '../../../src/utils/errors.js';

const base = {
  file: 'in.json',
  queueUrl: 'http://q.fifo',
  concurrency: 1,
  maxInputBytes: 1000,
  json: false,
  aws: { maxAttempts: 3, s3ForcePathStyle: false },
} as SendMessagesSettings;

describe('send-messages', () => {
  it('sends each element as its JSON text; FIFO ids come from fields or the body hash', () => {
    const out = buildOutgoing([{ id: 7, customer: 'c1' }], { ...base, groupIdField: 'customer' }, true);
    const body = '{"id":7,"customer":"c1"}';
    expect(out).toEqual([
      { body, groupId: 'c1', deduplicationId: createHash('sha256').update(body).digest('hex') },
    ]);
    const withDedup = buildOutgoing([{ id: 7 }], { ...base, groupId: 'all', dedupIdField: 'id' }, true);
    expect(withDedup).toEqual([{ body: '{"id":7}', groupId: 'all', deduplicationId: '7' }]);
    expect(buildOutgoing(['text'], base, false)).toEqual([{ body: '"text"' }]);
  });

  it('names the JSON pointer of a body without its group field, and of one too large for SQS', () => {
    const missing = () => buildOutgoing([{ a: 1 }, { b: 2 }], { ...base, groupIdField: 'a' }, true);
    expect(missing).toThrow(
      new AppError('INPUT_SCHEMA', 'in.json: /1/a: --group-id-field a is missing or not a string or number'),
    );
    const big = () => buildOutgoing([{ x: 'y'.repeat(300 * 1024) }], base, false);
    expect(big).toThrow(/^in\.json: \/0: the body is \d+ bytes, above the 262144-byte SQS limit$/);
  });

  it('batches by ten messages and by the 256 KiB request limit', () => {
    const small = Array.from({ length: 23 }, () => ({ body: 'x' }));
    expect(toBatches(small).map((b) => [b.start, b.items.length])).toEqual([
      [0, 10],
      [10, 10],
      [20, 3],
    ]);
    const large = Array.from({ length: 3 }, () => ({ body: 'y'.repeat(100 * 1024) }));
    expect(toBatches(large).map((b) => [b.start, b.items.length])).toEqual([
      [0, 2],
      [2, 1],
    ]);
  });
});
