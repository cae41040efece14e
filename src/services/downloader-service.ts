/**
 * `download-urls`: one URL list in, one report out.
 *
 * - Concurrency: p-limit caps downloads overall and per host; one shared undici Agent keeps
 *   connections alive and caps them per origin. Every response body is consumed or destroyed.
 * - Retries: `withRetries` is the only retry layer (see retry-policy.ts).
 * - All-or-nothing: bytes pass a meter (count, size limit) into a sink that makes them visible
 *   under the final name only once complete and verified (length, SHA-256).
 * - The main thread only moves bytes: a small body is collected and stored in one call; a large
 *   one streams to the sink (a disk file is written through the thread pool) while a worker thread
 *   computes its SHA-256 (hash-worker.ts). Each holds a bounded number of buffers, and backpressure
 *   pauses the socket, so memory per download is bounded whatever the body size.
 * - Resume: a disk `.part` with a record of its validator continues with Range + If-Range; a server
 *   that ignores the range answers 200 and the file restarts from zero. A 416, or a 206 of another
 *   version or range, restarts it too, within the same attempt.
 *
 * Nothing here knows about the CLI: the command passes typed options and reads the report.
 */
import { hash } from 'node:crypto';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Dispatcher } from 'undici';
import type { DownloadRunSettings } from '../config/download-settings.js';
import { RequestCounter } from '../aws/clients.js';
import { redactString, silentLogger, type Logger } from '../utils/logger.js';
import { DiskSink } from './download/disk-sink.js';
import { createHttpAgent } from './download/http-agent.js';
import { Manifest, manifestKey, type ManifestRecord } from './download/manifest.js';
import { HashWorkerPool, InThreadSha256, type HashPrefix, type StreamHash } from './download/hash-worker.js';
import {
  sendRequest,
  type HttpResponse,
  type ResponseBody,
  type ResponseHeaders,
} from './download/http-response.js';
import { ByteMeter, verifySha256, type MeterOptions } from './download/meter.js';
import {
  NameRegistry,
  filenameFromContentDisposition,
  nameFromUrl,
  sanitizeRelativePath,
  sanitizeSegment,
  type NameClaim,
  type NameSource,
} from './download/naming.js';
import { summarise } from './download/report.js';
import {
  DownloadError,
  classifyError,
  isRetryableStatus,
  parseRetryAfter,
  sleep as defaultSleep,
  withRetries,
  type RetryPolicy,
} from './download/retry-policy.js';
import { runScheduled } from './download/scheduler.js';
import type { DownloadSink, ResumeRecord, SinkWriter, Validators } from './download/sink.js';
import type { DownloadEntry, DownloadObserver, DownloadReport, DownloadResult } from './download/types.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
const USER_AGENT = `aws-msg/${pkg.version}`;
/** Error and skipped bodies up to this size are read to the end so the connection can be reused. */
const DRAIN_LIMIT_BYTES = 128 * 1024;
/**
 * Bodies of known length up to this size are collected in memory, verified, then stored in one
 * call (`DownloadSink.writeWhole`). Memory stays bounded by concurrency x this size.
 */
export const SMALL_BODY_MAX_BYTES = 256 * 1024;

/** The run settings; `hash` defaults to `all`. */
export type DownloadOptions = Omit<DownloadRunSettings, 'hash'> & Partial<Pick<DownloadRunSettings, 'hash'>>;

export interface DownloadDeps {
  /** Default: a new Agent from the options, closed at the end. An injected one is left open. */
  dispatcher?: Dispatcher;
  /** Default: built from `options.aws` when the target is S3 (and destroyed at the end). */
  s3?: S3Client;
  /** Counts S3 requests for the summary (pass the one the injected client reports to). */
  s3Requests?: RequestCounter;
  /** Default: a sink for `options.target`. */
  sink?: DownloadSink;
  logger?: Logger;
  /** Aborting stops new downloads and retries; downloads in flight finish. */
  signal?: AbortSignal;
  observer?: DownloadObserver;
  /** For tests: the backoff's random source and the wait. */
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

type Headers = ResponseHeaders;

/** One entry while it runs: what was decided before the first request, and what attempts learn. */
interface Job {
  entry: DownloadEntry;
  /** The URL with secrets masked, computed once: logs, reports. */
  masked: string;
  /** The manifest and resume-record key: the SHA-256 of the full URL. */
  key: string;
  origin: string;
  /** host:port, the key of the per-host limit. */
  host: string;
  path: string;
  name: string;
  /** Once fixed, a Content-Disposition header can no longer rename the entry. */
  nameFixed: boolean;
  renamedFrom?: string;
  /** The existence check already ran. */
  existsChecked: boolean;
  record?: ManifestRecord;
  /** Validators for a conditional request (`--if-changed`). */
  conditional?: Validators;
  httpStatus?: number;
  resumedFromBytes: number;
  started: number;
}

type AttemptOutcome =
  | { kind: 'downloaded'; bytes: number; sha256: string | undefined; validators: Validators }
  | { kind: 'unchanged'; validators: Validators }
  | { kind: 'skipped'; bytes: number };

/** A resume the server refused or answered for another version: the attempt starts over from zero. */
const RESTART = Symbol('restart');

/** The URL with secrets masked; the same string object when nothing was masked (one copy per URL). */
function maskUrl(url: string): string {
  const masked = redactString(url);
  return masked === url ? url : masked;
}

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function validatorsOf(headers: Headers): Validators {
  const out: Validators = {};
  const etag = header(headers, 'etag');
  const lastModified = header(headers, 'last-modified');
  if (etag) out.etag = etag;
  if (lastModified) out.lastModified = lastModified;
  return out;
}

/** If-Range needs a strong validator: a strong ETag, else Last-Modified. */
function ifRangeValue(validators: Validators): string | undefined {
  if (validators.etag && !validators.etag.startsWith('W/')) return validators.etag;
  return validators.lastModified;
}

/**
 * Whether a 206 is of the version the partial file came from: the validator sent in If-Range is
 * the one the response carries (when it carries one), and the total size is the recorded one.
 * Some servers and caches answer a range without checking If-Range.
 */
function sameVersion(sent: ResumeRecord, headers: Headers, total: number | undefined): boolean {
  const got = validatorsOf(headers);
  const byEtag = sent.etag !== undefined && !sent.etag.startsWith('W/');
  if (byEtag && got.etag !== undefined && got.etag !== sent.etag) return false;
  if (!byEtag && got.lastModified !== undefined && got.lastModified !== sent.lastModified) return false;
  return sent.totalBytes === undefined || total === undefined || total === sent.totalBytes;
}

/** `bytes 100-199/1000` -> start, end, total (undefined for `*`). */
function parseContentRange(
  value: string | undefined,
): { start: number; end: number; total?: number } | undefined {
  const match = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value?.trim() ?? '');
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) return undefined;
  return match[3] === '*' ? { start, end } : { start, end, total: Number(match[3]) };
}

function parseLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

/**
 * Feeds a body to the sink's stream and, when hashing, to the off-thread hash, with backpressure
 * from both: the socket is paused while either holds back. Resolves when the body ended (the
 * stream is not ended here: the caller verifies first). An error of the stream or of the hash
 * destroys the body, which rejects.
 */
function streamBody(
  body: ResponseBody,
  meter: ByteMeter,
  stream: Writable,
  streamHash: StreamHash | undefined,
): Promise<void> {
  let blocked = 0;
  const unblock = () => {
    blocked -= 1;
    if (blocked === 0) body.resume();
  };
  // Stays attached for the stream's life: an error after the body ended (a failing upload) must
  // not become an uncaught exception; `endStream` reports it.
  stream.on('error', (error) => body.destroy(error));
  streamHash?.onError((error) => body.destroy(error));
  return body.read((chunk) => {
    meter.update(chunk);
    if (!stream.write(chunk)) {
      blocked += 1;
      stream.once('drain', unblock);
    }
    if (streamHash !== undefined && !streamHash.update(chunk)) {
      blocked += 1;
      streamHash.onceRoom(unblock);
    }
    return blocked === 0;
  });
}

/** Ends a sink's stream and waits until everything was handed to it (written, or uploaded in parts). */
async function endStream(stream: Writable): Promise<void> {
  stream.end();
  await finished(stream, { readable: false });
}

/** Keys entries that would produce the same download twice. */
function duplicateKey(entry: DownloadEntry): string {
  return `${entry.url}\u0000${entry.filename ?? ''}`;
}

function result(
  job: { entry: DownloadEntry; masked: string; started: number },
  fields: Partial<DownloadResult> & Pick<DownloadResult, 'status'>,
): DownloadResult {
  // Built field by field so every report line has the same keys in the same order.
  return {
    index: job.entry.index,
    url: job.masked,
    status: fields.status,
    path: fields.path ?? null,
    bytes: fields.bytes ?? 0,
    sha256: fields.sha256 ?? null,
    attempts: fields.attempts ?? 0,
    durationMs: Date.now() - job.started,
    httpStatus: fields.httpStatus ?? null,
    reason: fields.reason ?? null,
    // Error texts may quote a server or a driver; registered secrets (header values) are masked.
    error: fields.error ? redactString(fields.error) : null,
    renamedFrom: fields.renamedFrom ?? null,
    resumedFromBytes: fields.resumedFromBytes ?? 0,
    note: fields.note ?? null,
  };
}

/** The state of one `downloadUrls` call. */
class DownloadRun {
  private bytesReceived = 0;
  private httpRequests = 0;
  /** Started with the first large body to hash. */
  private hashes: HashWorkerPool | undefined;
  private readonly registry = new NameRegistry();
  private readonly policy: RetryPolicy;
  private readonly logger: Logger;
  private readonly onBytes: ((bytes: number) => void) | undefined;

  constructor(
    private readonly options: DownloadOptions,
    private readonly deps: DownloadDeps,
    private readonly sink: DownloadSink,
    private readonly http: Dispatcher,
    private readonly manifest: Manifest,
  ) {
    this.logger = deps.logger ?? silentLogger;
    this.policy = {
      retries: options.retries,
      baseDelayMs: options.retryDelayMs,
      maxDelayMs: options.maxRetryWaitMs,
    };
    const observer = deps.observer;
    this.onBytes = observer?.onBytes ? (bytes) => observer.onBytes?.(bytes) : undefined;
  }

  get counters(): { bytesReceived: number; httpRequests: number } {
    return { bytesReceived: this.bytesReceived, httpRequests: this.httpRequests };
  }

  /** Resolves every name known before a request, in list order, and marks duplicates. */
  plan(entries: readonly DownloadEntry[]): Map<number, Job | { duplicateOf: DownloadEntry }> {
    const jobs = new Map<number, Job | { duplicateOf: DownloadEntry }>();
    const firstOf = new Map<string, DownloadEntry>();
    const candidates: Array<{ index: number; name: string; source: NameSource; job: Job }> = [];
    // Every URL of a host would otherwise hold its own copy of the same origin and host strings.
    const interned = new Map<string, string>();
    const intern = (text: string): string => {
      const known = interned.get(text);
      if (known !== undefined) return known;
      interned.set(text, text);
      return text;
    };
    for (const entry of entries) {
      const duplicate = duplicateKey(entry);
      const first = firstOf.get(duplicate);
      if (first) {
        jobs.set(entry.index, { duplicateOf: first });
        continue;
      }
      firstOf.set(duplicate, entry);
      const url = new URL(entry.url);
      const key = manifestKey(entry.url);
      const record = this.manifest.get(key);
      const fromFile = entry.filename !== undefined ? sanitizeRelativePath(entry.filename) : undefined;
      if (entry.filename !== undefined && fromFile === undefined) {
        this.logger.warn('filename_unusable', { pointer: entry.pointer, filename: entry.filename });
      }
      const fromManifest =
        record && sanitizeRelativePath(record.path) === record.path ? record.path : undefined;
      const [name, source]: [string, NameSource] = fromFile
        ? [fromFile, 'filename']
        : fromManifest
          ? [fromManifest, 'manifest']
          : [nameFromUrl(entry.url), 'url'];
      const job: Job = {
        entry,
        masked: maskUrl(entry.url),
        key,
        origin: intern(url.origin),
        host: intern(url.host),
        path: `${url.pathname}${url.search}`,
        name,
        nameFixed: source !== 'url',
        existsChecked: false,
        resumedFromBytes: 0,
        started: 0,
      };
      if (record) job.record = record;
      candidates.push({ index: entry.index, name, source, job });
      jobs.set(entry.index, job);
    }
    const claims = this.registry.plan(candidates);
    for (const candidate of candidates) {
      const claim = claims.get(candidate.index) as NameClaim;
      candidate.job.name = claim.name;
      if (claim.renamedFrom !== undefined) candidate.job.renamedFrom = claim.renamedFrom;
    }
    return jobs;
  }

  async runJob(job: Job): Promise<DownloadResult> {
    job.started = Date.now();
    const entry = job.entry;
    const logger = this.logger;
    if (this.deps.signal?.aborted) {
      return result(job, {
        status: 'cancelled',
        reason: 'interrupted',
        error: 'interrupted before it started',
      });
    }
    if (job.renamedFrom !== undefined && job.nameFixed) {
      logger.info('name_collision', { url: job.masked, wanted: job.renamedFrom, name: job.name });
    }
    const recordMatches = job.record !== undefined && job.record.path === job.name;
    // A record whose checksum differs from the one asked for describes other content.
    const sameContent = !(entry.sha256 && job.record?.sha256 && job.record.sha256 !== entry.sha256);

    if (this.options.existing !== 'overwrite' && job.nameFixed) {
      job.existsChecked = true;
      let existing: { bytes: number } | undefined;
      try {
        existing = await this.sink.exists(job.name);
      } catch (error) {
        const failure = classifyError(error);
        return result(job, { status: 'failed', reason: failure.reason, error: failure.message });
      }
      // A file the manifest gives to another URL holds that URL's bytes: never skipped as this one's.
      if (existing && sameContent && this.options.existing === 'skip' && !this.ownedElsewhere(job)) {
        return result(job, {
          status: 'skipped',
          path: this.sink.location(job.name),
          bytes: existing.bytes,
          sha256: recordMatches ? (job.record?.sha256 ?? null) : null,
          renamedFrom: job.renamedFrom ?? null,
          note: 'already exists',
        });
      }
      const record = job.record;
      if (existing && sameContent && recordMatches && record && (record.etag || record.lastModified)) {
        job.conditional = {};
        if (record.etag) job.conditional.etag = record.etag;
        if (record.lastModified) job.conditional.lastModified = record.lastModified;
      }
    }

    const outcome = await withRetries(() => this.attempt(job), this.policy, {
      ...(this.deps.signal ? { signal: this.deps.signal } : {}),
      sleep: this.deps.sleep ?? defaultSleep,
      ...(this.deps.random ? { random: this.deps.random } : {}),
      onRetry: ({ attempt, delayMs, error }) =>
        logger.debug('download_retry', {
          url: job.masked,
          attempt,
          delayMs,
          reason: error.reason,
          error: error.message,
        }),
    });

    const common: Partial<DownloadResult> = {
      attempts: outcome.attempts,
      httpStatus: job.httpStatus ?? null,
      renamedFrom: job.renamedFrom ?? null,
      note: job.renamedFrom !== undefined ? `renamed: "${job.renamedFrom}" is taken by another entry` : null,
    };
    if (!outcome.ok) {
      const error = outcome.error;
      // A permanent failure leaves no trace; a transient one keeps a resumable .part for the next run.
      if (!error.retryable && error.reason !== 'interrupted') {
        await this.sink.discardPartial(job.name).catch(() => undefined);
      }
      logger.warn('download_failed', {
        url: job.masked,
        reason: error.reason,
        error: error.message,
        attempts: outcome.attempts,
      });
      const status = error.reason === 'interrupted' ? 'cancelled' : 'failed';
      return result(job, { ...common, status, reason: error.reason, error: error.message });
    }

    const value = outcome.value;
    const now = new Date().toISOString();
    if (value.kind === 'skipped') {
      // Remember the name, so the next run skips without a request.
      if (!recordMatches)
        this.manifest.set(job.key, { path: job.name, url: job.masked, bytes: value.bytes, updatedAt: now });
      return result(job, {
        ...common,
        status: 'skipped',
        path: this.sink.location(job.name),
        bytes: value.bytes,
        sha256: recordMatches ? (job.record?.sha256 ?? null) : null,
        note: 'already exists',
      });
    }
    if (value.kind === 'unchanged') {
      const updated: ManifestRecord = {
        ...(job.record as ManifestRecord),
        ...value.validators,
        url: job.masked,
        updatedAt: now,
      };
      this.manifest.set(job.key, updated);
      return result(job, {
        ...common,
        status: 'unchanged',
        path: this.sink.location(job.name),
        bytes: updated.bytes ?? 0,
        sha256: updated.sha256 ?? null,
        note: 'not modified (HTTP 304)',
      });
    }
    const fresh: ManifestRecord = {
      path: job.name,
      url: job.masked,
      bytes: value.bytes,
      updatedAt: now,
    };
    if (value.sha256 !== undefined) fresh.sha256 = value.sha256;
    if (value.validators.etag) fresh.etag = value.validators.etag;
    if (value.validators.lastModified) fresh.lastModified = value.validators.lastModified;
    this.manifest.set(job.key, fresh);
    logger.debug('download_done', { url: job.masked, name: job.name, bytes: value.bytes });
    return result(job, {
      ...common,
      status: 'downloaded',
      path: this.sink.location(job.name),
      bytes: value.bytes,
      sha256: value.sha256 ?? null,
      resumedFromBytes: job.resumedFromBytes,
    });
  }

  /** One attempt: a request and its body into the sink. Throws on any failure; the retry loop decides. */
  private async attempt(job: Job): Promise<AttemptOutcome> {
    // A refused resume is not a transient failure: it starts over at once, without a resume
    // (so at most two requests), and does not use up a retry.
    for (let mayResume = true; ; mayResume = false) {
      const outcome = await this.request(job, mayResume);
      if (outcome !== RESTART) return outcome;
    }
  }

  /** One HTTP request and its body into the sink; `RESTART` when a resume was refused. */
  private async request(job: Job, mayResume: boolean): Promise<AttemptOutcome | typeof RESTART> {
    const entry = job.entry;
    const sink = this.sink;
    // Resume only with a record proving the partial bytes came from this URL, and a strong validator.
    let resumeFrom = 0;
    let resumeValidator: string | undefined;
    let resumeRecord: ResumeRecord | undefined;
    let prefixHash: StreamHash | undefined;
    const hashing = this.options.hash !== 'expected' || entry.sha256 !== undefined;
    try {
      if (sink.supportsResume && mayResume) {
        const partial = await sink.partial(job.name);
        const record = partial?.record;
        resumeValidator = record && record.key === job.key ? ifRangeValue(record) : undefined;
        // Without a readable prefix a hashed download cannot resume; it restarts instead.
        const readable = !hashing || partial?.path !== undefined;
        if (partial && partial.bytes > 0 && resumeValidator !== undefined && readable) {
          resumeFrom = partial.bytes;
          resumeRecord = record;
          // The partial file is under this name; a Content-Disposition header must not move it.
          job.nameFixed = true;
          if (hashing) {
            prefixHash = this.openHash({ path: partial.path as string, bytes: resumeFrom });
            // Hashed before the request: a long prefix must not hold a paused response open.
            await prefixHash.ready();
          }
        }
      }

      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...entry.headers };
      if (resumeFrom > 0 && resumeValidator !== undefined) {
        headers['range'] = `bytes=${resumeFrom}-`;
        headers['if-range'] = resumeValidator;
      } else if (job.conditional) {
        if (job.conditional.etag) headers['if-none-match'] = job.conditional.etag;
        if (job.conditional.lastModified) headers['if-modified-since'] = job.conditional.lastModified;
      }
      this.httpRequests += 1;
      const response = await sendRequest(this.http, {
        origin: job.origin,
        path: job.path,
        method: 'GET',
        headers,
      });
      try {
        return await this.receive(job, response, resumeFrom > 0 ? resumeRecord : undefined, {
          requestedFrom: resumeFrom,
          prefixHash,
          hashing,
        });
      } catch (error) {
        // Whatever went wrong, the body must not hold its connection: a no-op once consumed.
        response.body.destroy();
        throw error;
      }
    } finally {
      // A no-op once its digest was taken.
      prefixHash?.destroy();
    }
  }

  /**
   * Large bodies are hashed on a worker when a second core can run it (measured on 2 cores, 1 GiB:
   * 1.6-1.8 s against 1.8-2.2 s hashing on the main thread, tmpfs; 1.6-2.0 s against 2.6-3.1 s to
   * disk), on the main thread otherwise.
   */
  private openHash(prefix?: HashPrefix): StreamHash {
    if (availableParallelism() < 2) return new InThreadSha256(prefix);
    this.hashes ??= new HashWorkerPool();
    return this.hashes.open(prefix);
  }

  /** Stops the hash workers, if any were started. */
  async close(): Promise<void> {
    await this.hashes?.close();
  }

  /** Handles one response: status, names, limits, then the body into the sink. */
  private async receive(
    job: Job,
    response: HttpResponse,
    sent: ResumeRecord | undefined,
    {
      requestedFrom,
      prefixHash,
      hashing,
    }: { requestedFrom: number; prefixHash: StreamHash | undefined; hashing: boolean },
  ): Promise<AttemptOutcome | typeof RESTART> {
    const entry = job.entry;
    const sink = this.sink;
    let resumeFrom = requestedFrom;
    const status = response.statusCode;
    job.httpStatus = status;
    const body = response.body;

    if (status === 304 && job.conditional) {
      await body.dump(DRAIN_LIMIT_BYTES);
      return { kind: 'unchanged', validators: { ...job.conditional, ...validatorsOf(response.headers) } };
    }
    if (status === 416 && resumeFrom > 0) {
      // The partial file is not a prefix of what the server has now (it shrank, or we have it all).
      await body.dump(DRAIN_LIMIT_BYTES);
      return this.restart(job, resumeFrom, 'HTTP 416 for the resume range');
    }
    if (status < 200 || status >= 300) {
      await body.dump(DRAIN_LIMIT_BYTES);
      throw this.statusError(status, response.headers);
    }

    let expectedTotal: number | undefined;
    /** Off-thread hash of a streamed body: the resumed prefix's, or a fresh one. */
    let streamHash: StreamHash | undefined;
    if (status === 206) {
      const range = parseContentRange(header(response.headers, 'content-range'));
      // `sent` is defined exactly when a resume was asked for.
      if (sent !== undefined && range && range.start !== resumeFrom) {
        body.destroy();
        return this.restart(job, resumeFrom, `the server sent range ${range.start}-${range.end}`);
      }
      if (sent !== undefined && range && !sameVersion(sent, response.headers, range.total)) {
        body.destroy();
        return this.restart(job, resumeFrom, 'the range is of another version than the partial file');
      }
      if (resumeFrom === 0 || !range) {
        body.destroy();
        await sink.discardPartial(job.name);
        throw new DownloadError(
          'invalid_response',
          'the server answered with an unexpected range; restarting',
          {
            retryable: true,
            statusCode: status,
          },
        );
      }
      expectedTotal = range.total ?? range.end + 1;
      streamHash = prefixHash;
      job.resumedFromBytes = resumeFrom;
    } else {
      if (resumeFrom > 0) {
        // The range was ignored, or If-Range said the resource changed: start over cleanly.
        this.logger.debug('download_restart', { url: job.masked, discardedBytes: resumeFrom });
        resumeFrom = 0;
      }
      expectedTotal = parseLength(header(response.headers, 'content-length'));
      job.resumedFromBytes = 0;
    }

    if (!job.nameFixed) {
      job.nameFixed = true;
      this.applyContentDisposition(job, header(response.headers, 'content-disposition'));
      if (!job.existsChecked && this.options.existing === 'skip') {
        job.existsChecked = true;
        const existing = await sink.exists(job.name);
        if (existing && !this.ownedElsewhere(job)) {
          await body.dump(DRAIN_LIMIT_BYTES);
          return { kind: 'skipped', bytes: existing.bytes };
        }
      }
    }

    const limit = entry.maxBytes ?? this.options.maxBytes;
    if (limit !== undefined && expectedTotal !== undefined && expectedTotal > limit) {
      body.destroy();
      throw new DownloadError(
        'too_large',
        `Content-Length ${expectedTotal} exceeds the ${limit}-byte limit`,
        {
          retryable: false,
          statusCode: status,
        },
      );
    }

    const validators = validatorsOf(response.headers);
    const contentType = header(response.headers, 'content-type');
    const meterOptions: MeterOptions = { startBytes: resumeFrom };
    if (limit !== undefined) meterOptions.maxBytes = limit;
    if (expectedTotal !== undefined) meterOptions.expectedTotal = expectedTotal;
    if (this.onBytes) meterOptions.onBytes = this.onBytes;
    const meter = new ByteMeter(meterOptions);

    if (resumeFrom === 0 && expectedTotal !== undefined && expectedTotal <= SMALL_BODY_MAX_BYTES) {
      // Small and complete: collected, verified and stored in one call. Hashed in place: a 16 KiB
      // body hashes in ~9 us, less than a round trip to the hash worker.
      const chunks: Buffer[] = [];
      try {
        await body.read((chunk) => {
          meter.update(chunk);
          chunks.push(chunk);
          return true;
        });
        meter.finish();
      } finally {
        this.bytesReceived += meter.received;
      }
      const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, meter.total);
      const sha256 = hashing ? hash('sha256', data, 'hex') : undefined;
      if (sha256 !== undefined) verifySha256(sha256, entry.sha256);
      await sink.writeWhole(job.name, data, contentType);
      return { kind: 'downloaded', bytes: meter.total, sha256, validators };
    }

    if (hashing && streamHash === undefined) streamHash = this.openHash();
    const resume: ResumeRecord | undefined =
      ifRangeValue(validators) !== undefined
        ? {
            key: job.key,
            url: job.masked,
            ...validators,
            ...(expectedTotal !== undefined ? { totalBytes: expectedTotal } : {}),
          }
        : undefined;
    let writer: SinkWriter;
    try {
      writer = await sink.open({
        name: job.name,
        append: resumeFrom > 0,
        ...(contentType ? { contentType } : {}),
        ...(expectedTotal !== undefined ? { expectedBytes: expectedTotal } : {}),
        ...(resume ? { resume } : {}),
      });
    } catch (error) {
      body.destroy();
      streamHash?.destroy();
      throw error;
    }
    try {
      await streamBody(body, meter, writer.stream, streamHash);
      // Both checks before the end reaches the sink: a bad body never commits.
      meter.finish();
      const sha256 = streamHash ? await streamHash.digest() : undefined;
      if (sha256 !== undefined) verifySha256(sha256, entry.sha256);
      await endStream(writer.stream);
      await writer.commit();
      return { kind: 'downloaded', bytes: meter.total, sha256, validators };
    } catch (thrown) {
      const error = classifyError(thrown);
      body.destroy();
      streamHash?.destroy();
      // Keep the partial file only when a retry (or a later run) can resume it.
      await writer
        .abort(error.retryable && sink.supportsResume ? resume : undefined)
        .catch((cleanup: unknown) => this.logger.warn('cleanup_failed', { url: job.masked, error: cleanup }));
      throw error;
    } finally {
      this.bytesReceived += meter.received;
    }
  }

  /** Drops the partial file the server would not continue; the caller asks again from zero. */
  private async restart(job: Job, discardedBytes: number, why: string): Promise<typeof RESTART> {
    this.logger.debug('download_restart', { url: job.masked, discardedBytes, why });
    await this.sink.discardPartial(job.name);
    job.resumedFromBytes = 0;
    return RESTART;
  }

  /** Whether the manifest gives the job's name to another URL. */
  private ownedElsewhere(job: Job): boolean {
    const owner = this.manifest.ownerOf(job.name);
    return owner !== undefined && owner !== job.key;
  }

  private statusError(status: number, headers: Headers): DownloadError {
    if (status >= 300 && status < 400) {
      const location = header(headers, 'location') !== undefined;
      if (location && this.options.maxRedirects > 0) {
        return new DownloadError('too_many_redirects', `more than ${this.options.maxRedirects} redirects`, {
          retryable: false,
          statusCode: status,
        });
      }
      const why = location ? ' (a redirect; --max-redirects is 0)' : '';
      return new DownloadError('http_status', `HTTP ${status}${why}`, {
        retryable: false,
        statusCode: status,
      });
    }
    const retryAfterMs = parseRetryAfter(headers['retry-after']);
    return new DownloadError('http_status', `HTTP ${status}`, {
      retryable: isRetryableStatus(status),
      statusCode: status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  /** A Content-Disposition name replaces a name taken from the URL, claimed against all others. */
  private applyContentDisposition(job: Job, value: string | undefined): void {
    const proposed = filenameFromContentDisposition(value);
    const fromHeader = proposed !== undefined ? sanitizeSegment(proposed) : undefined;
    if (fromHeader !== undefined && fromHeader.toLowerCase() !== job.name.toLowerCase()) {
      const claim = this.registry.claim(job.entry.index, fromHeader);
      job.name = claim.name;
      if (claim.renamedFrom !== undefined) job.renamedFrom = claim.renamedFrom;
      else delete job.renamedFrom;
    }
    if (job.renamedFrom !== undefined) {
      this.logger.info('name_collision', { url: job.masked, wanted: job.renamedFrom, name: job.name });
    }
  }
}

/**
 * The S3 modules (the SDK, lib-storage) are imported only for an S3 target: a disk download would
 * otherwise pay ~0.2 s and ~70 MiB of RSS at start-up for code it never runs.
 */
async function createSink(
  options: DownloadOptions,
  deps: DownloadDeps,
  counter: RequestCounter,
): Promise<{ sink: DownloadSink; close: () => void }> {
  const none = () => undefined;
  if (deps.sink) return { sink: deps.sink, close: none };
  if (options.target.kind === 'disk') {
    return { sink: new DiskSink(options.target.dir, deps.logger), close: none };
  }
  const { bucket, prefix } = options.target;
  const { S3Sink } = await import('./download/s3-sink.js');
  if (deps.s3) return { sink: new S3Sink(deps.s3, bucket, prefix), close: none };
  if (!options.aws) throw new Error('an S3 target needs either an S3 client or AWS settings');
  const { createS3Client } = await import('../aws/s3-handler.js');
  const client = createS3Client(options.aws, counter);
  return { sink: new S3Sink(client, bucket, prefix), close: () => client.destroy() };
}

/**
 * Downloads every entry and returns one result per entry, in input order. Throws only when the
 * target is unusable before anything started (a missing bucket, an unwritable directory).
 */
export async function downloadUrls(
  entries: readonly DownloadEntry[],
  options: DownloadOptions,
  deps: DownloadDeps = {},
): Promise<DownloadReport> {
  const logger = deps.logger ?? silentLogger;
  const s3Requests = deps.s3Requests ?? new RequestCounter();
  const startedAt = Date.now();
  const { sink, close: closeSink } = await createSink(options, deps, s3Requests);
  const ownsDispatcher = deps.dispatcher === undefined;
  let dispatcher: Dispatcher | undefined;
  let run: DownloadRun | undefined;

  try {
    await sink.prepare();
    const read = Manifest.parse(await sink.readManifest());
    if (read.problem) logger.warn('manifest_ignored', { reason: read.problem });
    dispatcher = deps.dispatcher ?? createHttpAgent(options);
    const downloads = new DownloadRun(options, deps, sink, dispatcher, read.manifest);
    run = downloads;
    const jobs = downloads.plan(entries);

    deps.observer?.onRunStart?.(entries.length);
    const results = new Array<DownloadResult>(entries.length);
    // Asked several times per position by the scheduler: looked up once here.
    const hosts = entries.map((entry) => {
      const job = jobs.get(entry.index);
      return job && !('duplicateOf' in job) ? job.host : '';
    });
    const hostOf = (position: number): string => hosts[position] as string;
    const runPosition = async (position: number): Promise<void> => {
      const entry = entries[position] as DownloadEntry;
      const job = jobs.get(entry.index);
      let outcome: DownloadResult;
      if (!job || 'duplicateOf' in job) {
        const note = job ? `duplicate of ${job.duplicateOf.pointer}` : null;
        outcome = result(
          { entry, masked: maskUrl(entry.url), started: Date.now() },
          { status: 'skipped', note },
        );
      } else {
        try {
          outcome = await downloads.runJob(job);
        } catch (error) {
          // A bug in our own code must not lose the other results.
          logger.error('download_internal_error', { url: job.masked, error });
          outcome = result(job, { status: 'failed', reason: 'internal', error: String(error) });
        }
      }
      results[position] = outcome;
      // The result holds what the report needs; the job (URL parts, validators) can go.
      jobs.delete(entry.index);
      deps.observer?.onResult?.(outcome);
    };
    await runScheduled(entries.length, hostOf, runPosition, {
      concurrency: options.concurrency,
      perHost: options.perHost,
    });

    if (read.manifest.dirty) {
      try {
        await sink.writeManifest(read.manifest.serialize());
      } catch (error) {
        logger.warn('manifest_not_written', { error });
      }
    }

    const summary = summarise(results, {
      ...downloads.counters,
      durationMs: Date.now() - startedAt,
      ...(options.target.kind === 's3' ? { s3Requests: s3Requests.snapshot() } : {}),
    });
    deps.observer?.onRunEnd?.(summary);
    return { summary, results };
  } finally {
    await run?.close().catch(() => undefined);
    if (ownsDispatcher && dispatcher) await dispatcher.close().catch(() => undefined);
    closeSink();
  }
}
