/**
 * Dead-lettering large messages against a real SQS peer, which (like AWS) refuses a
 * SendMessageBatch whose payload exceeds its limit: ten big poison messages at once must all
 * reach the DLQ, in requests the peer accepts.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import { SqsQueue } from '../../src/aws/sqs-handler.js';
import type { QueueMessage } from '../../src/services/message-processor.js';
import { createQueue, testSqsClient } from '../helpers/aws.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';
import { receiveAll, sendBodies } from '../helpers/sqs-fixtures.js';

describeWithPeers(['sqs'], 'SqsQueue.deadLetter against local-aws-sqs', () => {
  let sqs: SQSClient;
  beforeAll(() => {
    sqs = testSqsClient(requirePeer('sqs'));
  });
  afterAll(() => sqs.destroy());

  it('ten ~200 KB poison messages at once all reach the DLQ (the batch is cut by bytes)', async () => {
    // Prepare: 2 MB of bodies, twice what one SendMessageBatch may carry.
    const source = await createQueue(sqs);
    const dlq = await createQueue(sqs);
    const bodies = Array.from({ length: 10 }, (_, i) => `not json ${i} ${'x'.repeat(200_000)}`);
    for (const body of bodies) await sendBodies(sqs, source.url, [body]);
    const queue = new SqsQueue({ sqs, queueUrl: source.url, dlqUrl: dlq.url, flushDelayMs: 20 });
    const held: QueueMessage[] = [];
    while (held.length < bodies.length) {
      held.push(
        ...(await queue.receive({ maxMessages: 10, waitTimeSeconds: 1, visibilityTimeoutSeconds: 60 })),
      );
    }

    // Act
    const results = await Promise.all(held.map((m) => queue.deadLetter(m, 'invalid JSON at 1:1')));

    // Assess
    expect(results.filter((r) => !r.ok)).toEqual([]);
    const dead = await receiveAll(sqs, dlq.url);
    expect(dead.map((m) => m.Body).sort()).toEqual([...bodies].sort());
  }, 30_000);
});
