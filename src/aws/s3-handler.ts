/**
 * The S3 edge: the archive sink. Records the archive rule selected are written as one JSON object
 * each under a deterministic key (`prefix/YYYY/MM/DD/<key>.json`), so a redelivery or a rerun
 * overwrites the same object instead of adding another.
 */
import { HeadBucketCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import type { ItemResult, MessageRecord, Sink } from '../database/sink.js';
import { AppError } from '../utils/errors.js';
import { silentLogger, type Logger } from '../utils/logger.js';
import { wrapAwsError } from './aws-errors.js';
import { countRequests, sdkConfig, type RequestCounter } from './clients.js';
import type { AwsSettings } from '../config/config-loader.js';

/** An S3 client from typed settings; counts its requests into `counter` when given. */
export function createS3Client(aws: AwsSettings, counter?: RequestCounter): S3Client {
  const config: S3ClientConfig = { ...sdkConfig(aws), forcePathStyle: aws.s3ForcePathStyle };
  if (aws.s3Endpoint !== undefined) config.endpoint = aws.s3Endpoint;
  const client = new S3Client(config);
  return counter ? countRequests(client, counter) : client;
}

/** S3 refuses keys longer than this many UTF-8 bytes. */
export const S3_MAX_KEY_BYTES = 1024;

export interface S3ArchiveSinkOptions {
  s3: S3Client;
  bucket: string;
  /** PutObject calls in flight at once. Default 16. */
  concurrency?: number;
  logger?: Logger;
}

/** The archived object: the body with the metadata needed to trace it back to its message. */
export function archiveDocument(record: MessageRecord): string {
  return JSON.stringify({
    key: record.key,
    messageId: record.messageId,
    ...(record.groupId !== undefined ? { groupId: record.groupId } : {}),
    sentAt: record.sentAt.toISOString(),
    receivedAt: record.receivedAt.toISOString(),
    messageAttributes: record.messageAttributes,
    body: record.body,
  });
}

export class S3ArchiveSink implements Sink {
  readonly name = 's3-archive';
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly logger: Logger;

  constructor(private readonly options: S3ArchiveSinkOptions) {
    this.limit = pLimit(options.concurrency ?? 16);
    this.logger = options.logger ?? silentLogger;
  }

  async open(): Promise<void> {
    try {
      await this.options.s3.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
      this.logger.info('store_opened', { store: this.name, bucket: this.options.bucket });
    } catch (error) {
      const wrapped = wrapAwsError(error, {
        service: 'S3',
        operation: 'HeadBucket',
        resource: `s3://${this.options.bucket}`,
      });
      if (wrapped.code === 'CONFIG_INVALID') throw wrapped;
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const hint = status === 404 ? ': the bucket does not exist' : status === 403 ? ': access denied' : '';
      throw new AppError('DEPENDENCY_UNAVAILABLE', `${wrapped.message}${hint}`, { cause: error });
    }
  }

  async write(batch: readonly MessageRecord[]): Promise<ItemResult[]> {
    return Promise.all(batch.map((record) => this.limit(() => this.put(record))));
  }

  private async put(record: MessageRecord): Promise<ItemResult> {
    const key = record.archiveKey;
    if (key === undefined) return { key: record.key, ok: true };
    if (Buffer.byteLength(key) > S3_MAX_KEY_BYTES) {
      return {
        key: record.key,
        ok: false,
        error: `archive key longer than ${S3_MAX_KEY_BYTES} bytes`,
        retryable: false,
      };
    }
    try {
      await this.options.s3.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: key,
          Body: archiveDocument(record),
          ContentType: 'application/json',
        }),
      );
      return { key: record.key, ok: true };
    } catch (error) {
      const wrapped = wrapAwsError(error, {
        service: 'S3',
        operation: 'PutObject',
        resource: `s3://${this.options.bucket}/${key}`,
      });
      // Even non-retryable S3 errors (access denied, no such bucket) are bucket-wide, not this
      // record's fault, so the record is retried later rather than dead-lettered.
      return { key: record.key, ok: false, error: wrapped.message, retryable: true };
    }
  }

  async close(): Promise<void> {
    // The client belongs to the caller.
  }
}
