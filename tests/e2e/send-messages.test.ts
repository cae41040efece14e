import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createQueue, TEST_CREDENTIALS, TEST_REGION, testSqsClient } from '../helpers/aws.js';
import { spawnCli } from '../helpers/cli.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';
import { receiveAll } from '../helpers/sqs-fixtures.js';

describeWithPeers(['sqs'], 'aws-msg send-messages (child process)', () => {
  let sqs: SQSClient;
  beforeAll(() => {
    sqs = testSqsClient(requirePeer('sqs'));
  });
  afterAll(() => sqs.destroy());

  const env = () => ({
    AWS_REGION: TEST_REGION,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_SQS: requirePeer('sqs'),
  });

  it('sends the sample file, one message per element', async () => {
    const queue = await createQueue(sqs);
    const result = await spawnCli(
      ['send-messages', '--file', 'input_data/messages.json', '--queue-url', queue.url, '--json'],
      {
        env: env(),
      },
    ).done;
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ messages: 60, sent: 60, failed: 0, batches: 6 });
    const received = await receiveAll(sqs, queue.url);
    expect(received).toHaveLength(60);
    expect(JSON.parse(received[0]?.Body as string)).toHaveProperty('eventId');
  });

  it('on a FIFO queue, a rerun within the deduplication window sends nothing twice', async () => {
    const queue = await createQueue(sqs, { fifo: true });
    const args = [
      'send-messages',
      '--file',
      'input_data/messages.json',
      '--queue-url',
      queue.url,
      '--group-id-field',
      'customerId',
    ];
    expect((await spawnCli(args, { env: env() }).done).code).toBe(0);
    expect((await spawnCli(args, { env: env() }).done).code).toBe(0);
    // Receive and delete until empty: SQS withholds a FIFO group while one of its messages is in flight.
    const bodies: string[] = [];
    for (
      let batch = await receiveAll(sqs, queue.url);
      batch.length > 0;
      batch = await receiveAll(sqs, queue.url)
    ) {
      bodies.push(...batch.map((m) => m.Body as string));
      for (let i = 0; i < batch.length; i += 10) {
        const Entries = batch
          .slice(i, i + 10)
          .map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle }));
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queue.url, Entries }));
      }
    }
    expect(bodies).toHaveLength(60);
    expect(new Set(bodies).size).toBe(60);
  });

  it('refuses a file that is not an array, naming the file and the rule, with exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aws-msg-send-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{"not": "an array"}');
    const result = await spawnCli(
      ['send-messages', '--file', file, '--queue-url', 'http://127.0.0.1:9/0/q'],
      {
        env: env(),
      },
    ).done;
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`aws-msg: ${file}: /: must be array (rule "type")\n`);
  });
});
