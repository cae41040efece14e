/** SDK clients and fresh resources on the emulators. Every test makes its own queue or bucket. */
import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export const TEST_REGION = 'us-east-1';
export const TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test-secret-key' };

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 12)}`;
}

export function testSqsClient(endpoint: string): SQSClient {
  return new SQSClient({ region: TEST_REGION, endpoint, credentials: TEST_CREDENTIALS });
}

export function testS3Client(endpoint: string): S3Client {
  return new S3Client({ region: TEST_REGION, endpoint, credentials: TEST_CREDENTIALS, forcePathStyle: true });
}

export interface TestQueue {
  url: string;
  arn: string;
  name: string;
}

export interface CreateQueueOptions {
  fifo?: boolean;
  /** Seconds. */
  visibilityTimeout?: number;
  /** Attach a redrive policy to this DLQ. */
  deadLetterTargetArn?: string;
  maxReceiveCount?: number;
  contentBasedDeduplication?: boolean;
}

/** Creates a fresh queue (PurgeQueue takes 60 s on local-aws-sqs, so tests never reuse one). */
export async function createQueue(client: SQSClient, options: CreateQueueOptions = {}): Promise<TestQueue> {
  const name = uniqueName('q') + (options.fifo ? '.fifo' : '');
  const attributes: Record<string, string> = {};
  if (options.fifo) attributes['FifoQueue'] = 'true';
  if (options.contentBasedDeduplication) attributes['ContentBasedDeduplication'] = 'true';
  if (options.visibilityTimeout !== undefined)
    attributes['VisibilityTimeout'] = String(options.visibilityTimeout);
  if (options.deadLetterTargetArn) {
    attributes['RedrivePolicy'] = JSON.stringify({
      deadLetterTargetArn: options.deadLetterTargetArn,
      maxReceiveCount: options.maxReceiveCount ?? 5,
    });
  }
  const created = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  const url = created.QueueUrl;
  if (!url) throw new Error('CreateQueue returned no QueueUrl');
  const attrs = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  return { url, name, arn: attrs.Attributes?.['QueueArn'] ?? '' };
}

export async function createBucket(client: S3Client): Promise<string> {
  const name = uniqueName('bucket').toLowerCase();
  await client.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
