/** The 12-hour receive window SQS enforces on visibility changes. */
import { withinReceiveWindow } from '../../../src/aws/sqs-handler.js';
import { queueMessage } from '../../helpers/factories.js';

const HOUR = 3600;

describe('withinReceiveWindow', () => {
  const received = new Date('2026-03-01T00:00:00Z');
  const message = { ...queueMessage({}), receivedAt: received };
  const at = (seconds: number) => received.getTime() + seconds * 1000;

  it('leaves a request that ends inside the window as it is', () => {
    expect(withinReceiveWindow(message, 60, at(5))).toBe(60);
    expect(withinReceiveWindow(message, 0, at(5))).toBe(0);
  });

  it('shortens a 12-hour backoff to what is left of the window, with a margin (the Lambda batching window)', () => {
    expect(withinReceiveWindow(message, 12 * HOUR, at(30))).toBe(12 * HOUR - 30 - 300);
  });

  it('a heartbeat late in a long hold asks for the rest of the window, never a negative time', () => {
    expect(withinReceiveWindow(message, 300, at(12 * HOUR - 400))).toBe(100);
    expect(withinReceiveWindow(message, 300, at(12 * HOUR - 250))).toBe(0);
  });
});
