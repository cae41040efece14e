/**
 * The S3 sink: each download streams into a lib-storage `Upload` (PutObject for bodies under one
 * part, a multipart upload above). The object appears only when the upload completes, and the
 * upload completes only after the byte stream ended cleanly; the meter fails the stream before its
 * end on a bad length or checksum, so lib-storage aborts the multipart upload instead.
 *
 * S3 calls are retried by the SDK (AWS_MAX_ATTEMPTS) and never again by the download retry loop.
 * A partial upload cannot be resumed across attempts: every attempt starts a fresh upload.
 */
import { PassThrough } from 'node:stream';
import {
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { wrapAwsError } from '../../aws/aws-errors.js';
import { MANIFEST_NAME } from './manifest.js';
import type { DownloadSink, OpenOptions, PartialFile, SinkWriter } from './sink.js';

/** S3's minimum part size; parts are buffered in memory, so the smallest keeps memory lowest. */
export const S3_PART_SIZE = 5 * 1024 * 1024;
/**
 * Parts uploaded at once per file. Two overlap the download of one part with the upload of the
 * previous; worst-case memory per large download is about (queue + 1) x part size.
 */
export const S3_QUEUE_SIZE = 2;

interface SdkError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

function isNotFound(error: unknown): boolean {
  const e = error as SdkError;
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

export class S3Sink implements DownloadSink {
  readonly supportsResume = false;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    /** Without leading or trailing slashes; may be empty. */
    private readonly prefix: string,
  ) {}

  private key(name: string): string {
    return this.prefix === '' ? name : `${this.prefix}/${name}`;
  }

  async prepare(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      throw wrapAwsError(error, { service: 'S3', operation: 'HeadBucket', resource: `s3://${this.bucket}` });
    }
  }

  location(name: string): string {
    return `s3://${this.bucket}/${this.key(name)}`;
  }

  async exists(name: string): Promise<{ bytes: number } | undefined> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(name) }),
      );
      return { bytes: head.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async partial(): Promise<PartialFile | undefined> {
    return undefined;
  }

  async discardPartial(): Promise<void> {
    // Nothing survives an aborted upload.
  }

  async open(options: OpenOptions): Promise<SinkWriter> {
    const body = new PassThrough();
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: this.key(options.name),
        Body: body,
        ...(options.contentType ? { ContentType: options.contentType } : {}),
      },
      partSize: S3_PART_SIZE,
      queueSize: S3_QUEUE_SIZE,
      leavePartsOnError: false,
    });
    // done() settles only after lib-storage aborted a failed multipart upload, so awaiting it
    // in abort() guarantees no parts are left behind.
    const done = upload.done();
    const settled = done.then(
      () => undefined,
      (error: unknown) => {
        // A failed upload stops reading; without this the download would stall on backpressure.
        if (!body.destroyed) body.destroy(error instanceof Error ? error : new Error(String(error)));
        return error;
      },
    );
    const target = this.location(options.name);
    return {
      stream: body,
      async commit() {
        try {
          await done;
        } catch (error) {
          throw wrapAwsError(error, { service: 'S3', operation: 'Upload', resource: target });
        }
      },
      async abort() {
        if (!body.destroyed) body.destroy(new Error('download aborted'));
        await settled;
      },
    };
  }

  async writeWhole(name: string, data: Buffer, contentType?: string): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key(name),
          Body: data,
          ...(contentType ? { ContentType: contentType } : {}),
        }),
      );
    } catch (error) {
      throw wrapAwsError(error, { service: 'S3', operation: 'PutObject', resource: this.location(name) });
    }
  }

  private manifestKey(): string {
    return this.key(MANIFEST_NAME);
  }

  async readManifest(): Promise<string | undefined> {
    try {
      const got = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.manifestKey() }),
      );
      return (await got.Body?.transformToString('utf8')) ?? undefined;
    } catch (error) {
      // 403 too: without s3:ListBucket a missing key reads as AccessDenied.
      const status = (error as SdkError).$metadata?.httpStatusCode;
      if (isNotFound(error) || status === 403) return undefined;
      throw wrapAwsError(error, {
        service: 'S3',
        operation: 'GetObject',
        resource: this.location(MANIFEST_NAME),
      });
    }
  }

  async writeManifest(text: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.manifestKey(),
        Body: text,
        ContentType: 'application/json',
      }),
    );
  }
}
