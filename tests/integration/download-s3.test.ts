/**
 * `--to s3://bucket/prefix` against moto: downloads stream into S3 (PutObject or a multipart
 * upload) and appear only when complete and verified; a failed one leaves neither an object nor
 * an unfinished multipart upload behind.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { countRequests, RequestCounter } from '../../src/aws/clients.js';
import { normaliseUrlList } from '../../src/services/download/input.js';
import { downloadUrls, type DownloadOptions } from '../../src/services/downloader-service.js';
import { AppError } from '../../src/utils/errors.js';
import { createBucket, testS3Client } from '../helpers/aws.js';
import { sha256Hex, startFaultServer, testBytes, type FaultServer } from '../helpers/http-fault-server.js';
import { describeWithPeers, requirePeer } from '../helpers/peers.js';

const MiB = 1024 * 1024;

describeWithPeers(['moto'], 'download-urls --to s3:// (moto)', () => {
  let s3: S3Client;
  let bucket: string;
  let server: FaultServer;

  beforeAll(() => {
    s3 = testS3Client(requirePeer('moto'));
  });

  afterAll(() => s3.destroy());

  beforeEach(async () => {
    bucket = await createBucket(s3);
    server = await startFaultServer();
  });

  afterEach(() => server.close());

  function options(overrides: Partial<DownloadOptions> = {}): DownloadOptions {
    return {
      target: { kind: 's3', bucket, prefix: 'raw/2024' },
      concurrency: 4,
      perHost: 4,
      retries: 2,
      retryDelayMs: 10,
      maxRetryWaitMs: 100,
      connectTimeoutMs: 2000,
      headersTimeoutMs: 5000,
      bodyTimeoutMs: 5000,
      maxRedirects: 5,
      existing: 'skip',
      ...overrides,
    };
  }

  async function objectBytes(key: string): Promise<Buffer> {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await got.Body!.transformToByteArray());
  }

  async function keys(): Promise<string[]> {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (listed.Contents ?? []).map((object) => object.Key ?? '').sort();
  }

  async function openUploads(): Promise<number> {
    const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    return listed.Uploads?.length ?? 0;
  }

  it('stores small and multipart-sized downloads byte for byte', async () => {
    // Prepare
    const small = testBytes(20_000, 1);
    const large = testBytes(7 * MiB + 123, 2);
    server.route('/small.json', { body: small, headers: { 'content-type': 'application/json' } });
    server.route('/large.bin', { body: large });

    // Act
    const report = await downloadUrls(
      normaliseUrlList([server.url('/small.json'), server.url('/large.bin')]),
      options(),
      { s3 },
    );

    // Assess
    expect((await objectBytes('raw/2024/small.json')).equals(small)).toBe(true);
    expect((await objectBytes('raw/2024/large.bin')).equals(large)).toBe(true);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'raw/2024/small.json' }));
    expect(head.ContentType).toBe('application/json');
    expect(report.results.map((r) => [r.status, r.path, r.sha256])).toEqual([
      ['downloaded', `s3://${bucket}/raw/2024/small.json`, sha256Hex(small)],
      ['downloaded', `s3://${bucket}/raw/2024/large.bin`, sha256Hex(large)],
    ]);
    expect(await openUploads()).toBe(0);
  });

  it('leaves no object and no open multipart upload when the checksum does not match', async () => {
    // Prepare
    server.route('/large.bin', { body: testBytes(11 * MiB, 3) });
    server.route('/small.bin', { body: testBytes(1000, 4) });
    const counter = new RequestCounter();
    const counted = countRequests(testS3Client(requirePeer('moto')), counter);

    // Act
    const report = await downloadUrls(
      normaliseUrlList([
        { url: server.url('/large.bin'), sha256: 'a'.repeat(64) },
        { url: server.url('/small.bin'), sha256: 'b'.repeat(64) },
      ]),
      options(),
      { s3: counted },
    );
    counted.destroy();

    // Assess: the large one really went multipart (so the abort path ran), the small one never
    // reached S3 at all (it is verified before its single PutObject).
    expect(report.results.map((r) => r.reason)).toEqual(['checksum_mismatch', 'checksum_mismatch']);
    expect(counter.get('CreateMultipartUpload')).toBe(1);
    expect(counter.get('UploadPart')).toBeGreaterThanOrEqual(2);
    expect(counter.get('AbortMultipartUpload')).toBe(1);
    expect(counter.get('CompleteMultipartUpload')).toBe(0);
    expect(counter.get('PutObject')).toBe(0);
    expect(await keys()).toEqual([]);
    expect(await openUploads()).toBe(0);
  });

  it('starts a fresh upload after a reset mid-body and ends with a byte-identical object', async () => {
    // Prepare
    const body = testBytes(6 * MiB, 5);
    server.route('/movie.mp4', { body, etag: '"m"', faults: [{ kind: 'reset', afterBytes: 5.5 * MiB }] });

    // Act
    const report = await downloadUrls(normaliseUrlList([server.url('/movie.mp4')]), options(), { s3 });

    // Assess
    expect(report.results[0]).toMatchObject({ status: 'downloaded', attempts: 2, resumedFromBytes: 0 });
    expect(server.requests('/movie.mp4')[1]!.headers['range']).toBeUndefined();
    expect((await objectBytes('raw/2024/movie.mp4')).equals(body)).toBe(true);
    expect(await openUploads()).toBe(0);
  });

  it('skips objects already uploaded on a re-run, from the manifest kept in the bucket', async () => {
    // Prepare
    server.route('/a.txt', { body: Buffer.from('a') });
    await downloadUrls(normaliseUrlList([server.url('/a.txt')]), options(), { s3 });
    server.resetStats();

    // Act
    const report = await downloadUrls(normaliseUrlList([server.url('/a.txt')]), options(), { s3 });

    // Assess
    expect(server.requestCount()).toBe(0);
    expect(report.results[0]).toMatchObject({ status: 'skipped', bytes: 1 });
    expect(await keys()).toEqual(['raw/2024/.aws-msg-manifest.json', 'raw/2024/a.txt']);
  });

  it('refuses a missing bucket before any download starts', async () => {
    // Prepare
    server.route('/a.txt', { body: Buffer.from('a') });

    // Act
    const run = downloadUrls(
      normaliseUrlList([server.url('/a.txt')]),
      options({ target: { kind: 's3', bucket: 'no-such-bucket-here', prefix: '' } }),
      { s3 },
    );

    // Assess
    await expect(run).rejects.toBeInstanceOf(AppError);
    await expect(run).rejects.toMatchObject({ exitCode: 3 });
    expect(server.requestCount()).toBe(0);
  });
});
