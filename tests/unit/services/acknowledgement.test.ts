import { backoffSeconds, decideAck, type AckPolicy } from '../../../src/services/acknowledgement.js';

const policy: AckPolicy = {
  hasDlq: true,
  retryBackoffMs: 10_000,
  retryBackoffMaxMs: 300_000,
  poisonBackoffMs: 3_600_000,
};
const half = () => 0.5;

describe('acknowledgement contract', () => {
  it('deletes a stored message', () => {
    expect(decideAck({ status: 'stored', key: 'k', archived: false }, 1, policy)).toEqual({ kind: 'delete' });
  });

  it('dead-letters a rejected message when a DLQ is configured', () => {
    expect(decideAck({ status: 'rejected', reason: 'schema' }, 1, policy)).toEqual({
      kind: 'dead-letter',
      reason: 'schema',
    });
  });

  it('without a DLQ, hides a rejected message for the poison backoff so the redrive policy can move it', () => {
    expect(decideAck({ status: 'rejected', reason: 'schema' }, 1, { ...policy, hasDlq: false })).toEqual({
      kind: 'retry-later',
      visibilityTimeoutSeconds: 3600,
      reason: 'schema',
    });
  });

  it('backs a transient failure off exponentially by receive count', () => {
    const seconds = [1, 2, 3, 4, 10].map(
      (n) =>
        (
          decideAck({ status: 'failed', reason: 'down' }, n, policy, half) as {
            visibilityTimeoutSeconds: number;
          }
        ).visibilityTimeoutSeconds,
    );
    // 10 s, 20 s, 40 s, 80 s, capped at 300 s; "equal jitter" at 0.5 gives three quarters of each.
    expect(seconds).toEqual([8, 15, 30, 60, 225]);
  });

  it('releases a released message at once', () => {
    expect(decideAck({ status: 'released', reason: 'fifo' }, 1, policy)).toEqual({
      kind: 'release',
      visibilityTimeoutSeconds: 0,
    });
    expect(decideAck({ status: 'released', reason: 'fifo', delaySeconds: 3 }, 1, policy)).toEqual({
      kind: 'release',
      visibilityTimeoutSeconds: 3,
    });
  });

  it('keeps every visibility it asks for within what SQS accepts (0 s to 12 h)', () => {
    const long = { ...policy, hasDlq: false, poisonBackoffMs: 24 * 3_600_000 };
    expect(decideAck({ status: 'rejected', reason: 'schema' }, 1, long)).toMatchObject({
      visibilityTimeoutSeconds: 43_200,
    });
    expect(decideAck({ status: 'released', reason: 'fifo', delaySeconds: 50_000 }, 1, policy)).toEqual({
      kind: 'release',
      visibilityTimeoutSeconds: 43_200,
    });
    expect(decideAck({ status: 'released', reason: 'fifo', delaySeconds: -3 }, 1, policy)).toEqual({
      kind: 'release',
      visibilityTimeoutSeconds: 0,
    });
  });

  it('backoff jitter stays between half and all of the exponential value, within SQS limits', () => {
    expect(backoffSeconds(1, 10_000, 60_000, () => 0)).toBe(5);
    expect(backoffSeconds(1, 10_000, 60_000, () => 1)).toBe(10);
    expect(backoffSeconds(50, 10_000, 10 * 3_600_000 * 10, () => 1)).toBe(43_200);
    expect(backoffSeconds(0, 10_000, 60_000, () => 1)).toBe(10);
  });
});
