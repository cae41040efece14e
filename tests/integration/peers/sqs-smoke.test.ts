import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { createQueue, testSqsClient } from '../../helpers/aws.js';
import { describeWithPeers, requirePeer } from '../../helpers/peers.js';
import type { PeerName } from '../../helpers/services.js';

// The same round trip against both SQS implementations, so no behaviour rests on one emulator.
for (const peer of ['sqs', 'moto'] as const satisfies readonly PeerName[]) {
  describeWithPeers([peer], `SQS round trip (${peer})`, () => {
    it('sends, receives and deletes a message', async () => {
      // Prepare
      const client = testSqsClient(requirePeer(peer));
      const queue = await createQueue(client);

      // Act
      await client.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: '{"hello":"world"}' }));
      const received = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queue.url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 2,
          AttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const message = received.Messages?.[0];
      await client.send(
        new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: message?.ReceiptHandle }),
      );
      const after = await client.send(
        new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      const attrs = await client.send(
        new GetQueueAttributesCommand({
          QueueUrl: queue.url,
          AttributeNames: ['ApproximateNumberOfMessages'],
        }),
      );

      // Assess
      expect(received.Messages).toHaveLength(1);
      expect(message?.Body).toBe('{"hello":"world"}');
      expect(message?.Attributes?.['ApproximateReceiveCount']).toBe('1');
      expect(after.Messages ?? []).toHaveLength(0);
      expect(attrs.Attributes?.['ApproximateNumberOfMessages']).toBe('0');
      client.destroy();
    });
  });
}
