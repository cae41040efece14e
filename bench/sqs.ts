/**
 * `npm run bench:sqs`: aws-msg process-sqs against the SQS floor and sqs-consumer, side by side
 * in one run (issue 7). Every case gets a fresh queue holding the same N messages and, where it
 * stores, a fresh FerretDB. Each peer and each tool runs in a process of its own:
 *
 *   driver (this file: seeds, samples, verifies)
 *   local-aws-sqs      bench/sqs-emulator.ts, counts requests by action and the drain window
 *   FerretDB           one per case, its Prometheus metrics count MongoDB round trips by command
 *   moto               S3 for the archive pass
 *   the tool           under /usr/bin/time -v (peak RSS of the tool's process only)
 *
 * Environment: BENCH_SQS_MESSAGES (default 20000); BENCH_SQS_CONSUMER_MESSAGES (default 5000): the
 * one-at-a-time sqs-consumer baseline runs at ~55 msg/s here, so by default it processes the first
 * 5,000 of its N-message queue (6 minutes for all 20,000 would break the 10-minute budget; its rate
 * is flat, being one request after another); BENCH_SQS_SKIP_ARCHIVE=1; BENCH_SQS_SKIP_NODE20=1.
 * Results: stdout (Markdown) and bench/results/sqs-<time>.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { MongoClient } from 'mongodb';
import {
  freePort,
  ferretDbBinary,
  motoBinary,
  startMoto,
  waitForPort,
  type RunningService,
} from '../tests/helpers/services.js';
import {
  AWS_MSG_BIN,
  BENCH_BUILD_DIR,
  GNU_TIME,
  NODE22,
  REPO_ROOT,
  RESULTS_DIR,
  ensureBenchDependencies,
  envInt,
  fmt,
  cpuSecondsOf,
  isInterrupted,
  load1,
  machineInfo,
  markdownTable,
  mib,
  onCleanup,
  requireCommand,
  runMain,
  runMeasured,
  sleep,
  spawnTracked,
  stopChild,
  tempDir,
  track,
  versionOf,
  type Measured,
} from './common.js';
import type { EmulatorSnapshot } from './sqs-emulator.js';

const N = envInt('BENCH_SQS_MESSAGES', 20_000);
const CONSUMER_N = Math.min(N, envInt('BENCH_SQS_CONSUMER_MESSAGES', 5000));
const SKIP_ARCHIVE = process.env['BENCH_SQS_SKIP_ARCHIVE'] === '1';
const SKIP_NODE20 = process.env['BENCH_SQS_SKIP_NODE20'] === '1';
const ROUNDS = envInt('BENCH_SQS_ROUNDS', 3);
/** Only the cases whose id matches this regular expression (for investigating one case). */
const ONLY = process.env['BENCH_SQS_ONLY'] ? new RegExp(process.env['BENCH_SQS_ONLY']) : undefined;
/** Extra node arguments for the tool processes, e.g. --cpu-prof (for investigating, not for figures). */
const TOOL_NODE_ARGS = (process.env['BENCH_SQS_TOOL_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
/** Keep each tool's stdout and stderr in this directory (for investigating). */
const DUMP_DIR = process.env['BENCH_SQS_DUMP_DIR'];
const ARCHIVE_RULE = 'type=order.paid';
/** V8 heap caps a user can set for a memory-bounded run (both allowed in NODE_OPTIONS). */
const HEAP_CAP = '--max-old-space-size=96 --max-semi-space-size=4';
const CREDENTIALS = { accessKeyId: 'bench', secretAccessKey: 'bench-secret' };
const REGION = 'us-east-1';
/** Per tool run; the slowest case (sqs-consumer one at a time) takes a few minutes at N=20000. */
const RUN_TIMEOUT_MS = 9 * 60_000;

// ---------------------------------------------------------------------------------------------
// Message bodies: ~1 KiB of JSON each, every 10th one matching the archive rule.
// ---------------------------------------------------------------------------------------------

const OTHER_TYPES = ['order.created', 'order.shipped', 'order.updated', 'order.refunded'];

function messageBody(i: number): string {
  const event = {
    eventId: `evt-${String(i).padStart(7, '0')}`,
    type: i % 10 === 0 ? 'order.paid' : OTHER_TYPES[i % OTHER_TYPES.length],
    orderId: `ORD-${100000 + Math.floor(i / 3)}`,
    customerId: `CUST-${String(i % 977).padStart(5, '0')}`,
    amount: Math.round(((i * 37) % 200_000) + 99) / 100,
    currency: 'EUR',
    occurredAt: new Date(Date.UTC(2026, 11, 3, 8, 0, 0, i)).toISOString(),
    items: Array.from({ length: 3 + (i % 3) }, (_, k) => ({
      sku: `SKU-${(i * 7 + k) % 5000}`,
      quantity: 1 + ((i + k) % 4),
      unitPrice: Math.round(((i + k * 13) % 9000) + 100) / 100,
    })),
    shipping: { country: 'DE', city: 'Berlin', postcode: String(10115 + (i % 90)), method: 'standard' },
    note: '',
  };
  const bare = JSON.stringify(event).length;
  event.note = 'n'.repeat(Math.max(0, 1024 - bare));
  return JSON.stringify(event);
}

// ---------------------------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------------------------

class Emulator {
  private waiters: Array<{ type: string; resolve: (message: unknown) => void }> = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly endpoint: string,
  ) {
    child.on('message', (message: { type?: string }) => {
      const index = this.waiters.findIndex((w) => w.type === message.type);
      if (index >= 0) this.waiters.splice(index, 1)[0]?.resolve(message);
    });
  }

  static async start(node: string): Promise<Emulator> {
    const port = await freePort();
    const child = track(
      fork(join(BENCH_BUILD_DIR, 'sqs-emulator.js'), [String(port)], {
        execPath: node,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        detached: true,
      }),
    );
    onCleanup('local-aws-sqs', () => stopChild(child));
    const ready = await new Promise<{ endpoint: string }>((resolve, reject) => {
      child.once('message', (message) => resolve(message as { endpoint: string }));
      child.once('exit', (code) => reject(new Error(`the SQS emulator exited with ${code}`)));
    });
    return new Emulator(child, ready.endpoint);
  }

  private ask<T>(type: string, reply: string): Promise<T> {
    return new Promise<T>((resolve) => {
      this.waiters.push({ type: reply, resolve: (m) => resolve(m as T) });
      this.child.send({ type });
    });
  }

  async reset(): Promise<void> {
    await this.ask('reset', 'reset-done');
  }

  snapshot(): Promise<EmulatorSnapshot> {
    return this.ask<EmulatorSnapshot>('snapshot', 'snapshot');
  }
}

interface Ferret {
  uri: string;
  metricsUrl: string;
  /** CPU seconds FerretDB used so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

async function startFerret(binary: string): Promise<Ferret> {
  const port = await freePort();
  const debugPort = await freePort();
  const dir = tempDir('aws-msg-bench-ferretdb-');
  const child = spawnTracked(
    binary,
    [
      '--handler=sqlite',
      `--sqlite-url=file:${dir}/`,
      `--listen-addr=127.0.0.1:${port}`,
      '--telemetry=disable',
      `--state-dir=${dir}`,
      `--debug-addr=127.0.0.1:${debugPort}`,
      '--log-level=error',
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const remove = onCleanup('ferretdb', () => stopChild(child));
  await waitForPort(port, 30_000);
  await waitForPort(debugPort, 30_000);
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    metricsUrl: `http://127.0.0.1:${debugPort}/debug/metrics`,
    cpuSeconds: () => cpuSecondsOf(child.pid),
    async stop() {
      remove();
      await stopChild(child);
    },
  };
}

/** MongoDB wire requests FerretDB received, by command (ferretdb_client_requests_total). */
async function ferretRequests(metricsUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const counts: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^ferretdb_client_requests_total\{([^}]*)\}\s+([0-9.e+]+)/.exec(line);
    if (!match) continue;
    const labels = match[1] ?? '';
    const command = /command="([^"]*)"/.exec(labels)?.[1] ?? 'unknown';
    const opcode = /opcode="([^"]*)"/.exec(labels)?.[1] ?? '';
    const name = command === 'unknown' ? `${opcode}` : command;
    counts[name] = (counts[name] ?? 0) + Number(match[2]);
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Queues
// ---------------------------------------------------------------------------------------------

function sqsClient(endpoint: string): SQSClient {
  return new SQSClient({ region: REGION, endpoint, credentials: CREDENTIALS });
}

async function freshQueue(sqs: SQSClient, label: string, bodies: readonly string[]): Promise<string> {
  const created = await sqs.send(
    new CreateQueueCommand({ QueueName: `bench-${label}-${randomUUID().slice(0, 8)}` }),
  );
  const url = created.QueueUrl as string;
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (;;) {
        const start = next;
        next += 10;
        if (start >= bodies.length) return;
        const entries = bodies
          .slice(start, start + 10)
          .map((body, k) => ({ Id: String(k), MessageBody: body }));
        const sent = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
        if (sent.Failed?.length) throw new Error(`seeding failed: ${JSON.stringify(sent.Failed)}`);
      }
    }),
  );
  // The emulator may show the last sends a moment later: wait up to 3 s for the count.
  let depth = await queueDepth(sqs, url);
  for (let tries = 0; depth.visible !== bodies.length && tries < 30; tries++) {
    await sleep(100);
    depth = await queueDepth(sqs, url);
  }
  if (depth.visible !== bodies.length)
    throw new Error(`seeded ${bodies.length}, queue shows ${depth.visible}`);
  return url;
}

async function queueDepth(sqs: SQSClient, url: string): Promise<{ visible: number; inFlight: number }> {
  const response = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(response.Attributes?.['ApproximateNumberOfMessages'] ?? -1),
    inFlight: Number(response.Attributes?.['ApproximateNumberOfMessagesNotVisible'] ?? -1),
  };
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

type Tool = 'floor' | 'aws-msg' | 'sqs-consumer';

interface CaseSpec {
  id: string;
  label: string;
  tool: Tool;
  node: string;
  nodeVersion: string;
  /** aws-msg flags, or the sqs-consumer mode. */
  args: string[];
  /** Messages the tool processes; the queue always holds N (the rest stay there). */
  messages: number;
  mongo: boolean;
  archive?: { s3Endpoint: string };
  /** Sample ApproximateNumberOfMessagesNotVisible during the run. */
  sampleInFlight?: boolean;
  /** NODE_OPTIONS for the tool. */
  nodeOptions?: string;
}

interface CaseResult {
  id: string;
  label: string;
  tool: Tool;
  nodeVersion: string;
  args: string[];
  messages: number;
  /** Drain window at the emulator: first ReceiveMessage to last delete answered. */
  windowMs: number;
  messagesPerSecond: number;
  /** The tool process, spawn to exit (start-up and a final empty poll included). */
  processMs: number;
  sqsRequests: Record<string, number>;
  sqsRequestsPerMessage: number;
  /** What the tool itself counted (aws-msg's --json summary, or the workers' middleware). */
  toolSqsRequests?: Record<string, number>;
  mongoRequests: Record<string, number>;
  mongoRoundTripsPerMessage: number;
  mongoWritesPerMessage: number;
  maxRssKb: number;
  cpuSeconds: number;
  emulatorCpuSeconds: number;
  /** FerretDB's CPU over the whole case (start-up and verification queries included). */
  ferretCpuSeconds: number;
  /** (tool + emulator + FerretDB CPU) / drain window: how many of the 2 cores the case kept busy. */
  coresBusy: number;
  maxInFlightSeen?: number;
  load1Before: number;
  verified: string;
  toolSummary?: unknown;
  s3Requests?: Record<string, number>;
}

interface Context {
  emulator: Emulator;
  sqs: SQSClient;
  bodies: string[];
  ferretBinary: string;
}

function toolEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...extra,
  };
}

function lastJsonLine(stdout: string): Record<string, unknown> {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON summary on stdout: ${stdout.slice(-500)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

function failure(spec: CaseSpec, run: Measured, why: string): Error {
  return new Error(`${spec.label}: ${why} (exit ${run.exitCode})\n${run.stderr.slice(-3000)}`);
}

async function runCase(ctx: Context, spec: CaseSpec): Promise<CaseResult> {
  if (isInterrupted()) throw new Error('interrupted');
  const bodies = ctx.bodies;
  const partial = spec.messages < bodies.length;
  const queueUrl = await freshQueue(ctx.sqs, spec.id, bodies);
  const ferret = spec.mongo ? await startFerret(ctx.ferretBinary) : undefined;
  const database = 'bench';
  const workDir = tempDir('aws-msg-bench-run-');
  let archiveBucket: string | undefined;
  let s3: S3Client | undefined;
  if (spec.archive) {
    s3 = new S3Client({
      region: REGION,
      endpoint: spec.archive.s3Endpoint,
      credentials: CREDENTIALS,
      forcePathStyle: true,
    });
    archiveBucket = `bench-${randomUUID().slice(0, 8)}`;
    await s3.send(new CreateBucketCommand({ Bucket: archiveBucket }));
  }

  let command: string[];
  let env: NodeJS.ProcessEnv;
  if (spec.tool === 'floor') {
    command = [
      join(BENCH_BUILD_DIR, 'sqs-floor.js'),
      ctx.emulator.endpoint,
      queueUrl,
      String(spec.messages),
      '8',
      ...(ferret ? [ferret.uri, database] : []),
    ];
    env = toolEnv({});
  } else if (spec.tool === 'sqs-consumer') {
    command = [
      join(BENCH_BUILD_DIR, 'sqs-consumer-worker.js'),
      spec.args[0] as string,
      ctx.emulator.endpoint,
      queueUrl,
      (ferret as Ferret).uri,
      database,
      String(spec.messages),
    ];
    env = toolEnv({});
  } else {
    command = [
      AWS_MSG_BIN,
      'process-sqs',
      '--until-empty',
      '--json',
      '--log-level',
      'warn',
      '--queue-url',
      queueUrl,
      '--mongo-uri',
      (ferret as Ferret).uri,
      '--mongo-db',
      database,
      ...(archiveBucket ? ['--archive-bucket', archiveBucket, '--archive-when', ARCHIVE_RULE] : []),
      ...spec.args,
    ];
    env = toolEnv({
      ...(spec.nodeOptions ? { NODE_OPTIONS: spec.nodeOptions } : {}),
      AWS_ENDPOINT_URL_SQS: ctx.emulator.endpoint,
      ...(spec.archive
        ? { AWS_ENDPOINT_URL_S3: spec.archive.s3Endpoint, AWS_S3_FORCE_PATH_STYLE: 'true' }
        : {}),
    });
  }

  const load1Before = load1();
  await ctx.emulator.reset();
  let samplerRequests = 0;
  let maxInFlightSeen = 0;
  let sampling = spec.sampleInFlight === true;
  const sampler = (async () => {
    while (sampling) {
      await sleep(200);
      if (!sampling) break;
      samplerRequests++;
      const depth = await queueDepth(ctx.sqs, queueUrl);
      maxInFlightSeen = Math.max(maxInFlightSeen, depth.inFlight);
    }
  })();
  process.stderr.write(`  ${spec.label} ... `);
  const run = await runMeasured(spec.node, [...TOOL_NODE_ARGS, ...command], {
    env,
    cwd: workDir,
    timeoutMs: RUN_TIMEOUT_MS,
  });
  sampling = false;
  await sampler;
  if (DUMP_DIR) {
    mkdirSync(DUMP_DIR, { recursive: true });
    writeFileSync(join(DUMP_DIR, `${spec.id}.stdout`), run.stdout);
    writeFileSync(join(DUMP_DIR, `${spec.id}.stderr`), run.stderr);
  }
  const emulator = await ctx.emulator.snapshot();
  const ferretCpuSeconds = ferret ? ferret.cpuSeconds() : 0;
  const mongoRequests = ferret ? await ferretRequests(ferret.metricsUrl) : {};

  // Verify before believing any number: the queue is empty, every message is stored once.
  const checks: string[] = [];
  const depth = await queueDepth(ctx.sqs, queueUrl);
  const deletes =
    (emulator.requests['DeleteMessage'] ?? 0) + 10 * (emulator.requests['DeleteMessageBatch'] ?? 0);
  if (partial) {
    // The tool stopped after `messages`; what it acknowledged is gone, the rest is still queued.
    if (spec.tool !== 'sqs-consumer' || (emulator.requests['DeleteMessage'] ?? 0) !== spec.messages) {
      throw failure(spec, run, `expected ${spec.messages} DeleteMessage calls, saw ${deletes}`);
    }
    checks.push(`${spec.messages} deleted, ${fmt(depth.visible)} left queued`);
  } else {
    if (depth.visible !== 0 || depth.inFlight !== 0) {
      throw failure(spec, run, `queue not empty after the run: ${JSON.stringify(depth)}`);
    }
    checks.push('queue empty');
  }
  if (ferret) {
    const mongo = new MongoClient(ferret.uri);
    try {
      const stored = await mongo.db(database).collection('messages').countDocuments();
      if (stored !== spec.messages) throw failure(spec, run, `stored ${stored} of ${spec.messages} messages`);
      checks.push(`${stored} documents`);
    } finally {
      await mongo.close();
    }
  }
  if (s3 && archiveBucket) {
    let objects = 0;
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: archiveBucket, ContinuationToken: token }),
      );
      objects += page.KeyCount ?? 0;
      token = page.NextContinuationToken;
    } while (token);
    const expected = bodies.slice(0, spec.messages).filter((b) => b.includes('"type":"order.paid"')).length;
    if (objects !== expected) throw failure(spec, run, `archived ${objects} objects, expected ${expected}`);
    checks.push(`${objects} archive objects`);
    s3.destroy();
  }
  if (run.exitCode !== 0) throw failure(spec, run, 'non-zero exit');
  await ferret?.stop();
  await ctx.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));

  const summary = lastJsonLine(run.stdout);
  const sqsRequests = { ...emulator.requests };
  if (samplerRequests > 0) {
    sqsRequests['GetQueueAttributes'] = (sqsRequests['GetQueueAttributes'] ?? 0) - samplerRequests;
    if (sqsRequests['GetQueueAttributes'] === 0) delete sqsRequests['GetQueueAttributes'];
  }
  const sqsTotal = Object.values(sqsRequests).reduce((a, b) => a + b, 0);
  const mongoTotal = Object.values(mongoRequests).reduce((a, b) => a + b, 0);
  const mongoWrites = (mongoRequests['insert'] ?? 0) + (mongoRequests['update'] ?? 0);
  if (emulator.firstReceiveAt === null || emulator.lastDeleteAt === null) {
    throw failure(spec, run, 'the emulator saw no receive or no delete');
  }
  const windowMs = emulator.lastDeleteAt - emulator.firstReceiveAt;
  const result: CaseResult = {
    id: spec.id,
    label: spec.label,
    tool: spec.tool,
    nodeVersion: spec.nodeVersion,
    args: spec.args,
    messages: spec.messages,
    windowMs,
    messagesPerSecond: (spec.messages * 1000) / windowMs,
    processMs: Math.round(run.wallMs),
    sqsRequests,
    sqsRequestsPerMessage: sqsTotal / spec.messages,
    toolSqsRequests: (spec.tool === 'aws-msg' ? summary['sqsRequests'] : summary['requests']) as Record<
      string,
      number
    >,
    mongoRequests,
    mongoRoundTripsPerMessage: mongoTotal / spec.messages,
    mongoWritesPerMessage: mongoWrites / spec.messages,
    maxRssKb: run.maxRssKb,
    cpuSeconds: Math.round((run.userSeconds + run.systemSeconds) * 100) / 100,
    emulatorCpuSeconds: emulator.cpuMs / 1000,
    ferretCpuSeconds,
    coresBusy:
      (run.userSeconds + run.systemSeconds + emulator.cpuMs / 1000 + ferretCpuSeconds) / (windowMs / 1000),
    load1Before,
    verified: checks.join(', '),
    toolSummary: summary,
  };
  if (spec.sampleInFlight) result.maxInFlightSeen = maxInFlightSeen;
  if (spec.tool === 'aws-msg' && summary['s3Requests'])
    result.s3Requests = summary['s3Requests'] as Record<string, number>;
  process.stderr.write(
    `${fmt(result.messagesPerSecond)} msg/s, ${fmt(result.sqsRequestsPerMessage, 3)} SQS req/msg, ` +
      `${fmt(result.mongoRoundTripsPerMessage, 3)} Mongo rt/msg, RSS ${mib(result.maxRssKb)} (${result.verified})\n`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

function byType(counts: Record<string, number>, n: number): string {
  return Object.entries(counts)
    .filter(([, v]) => v > 0)
    .sort(([, a], [, b]) => b - a)
    .map(([k, v]) => `${k} ${fmt(v / n, 3)}`)
    .join(', ');
}

const HEADER = [
  'Case',
  'Node',
  'Messages',
  'msgs/s',
  '× floor (1)',
  '× floor with store (1s)',
  '× (3)',
  'SQS requests/msg (by type)',
  'MongoDB round trips/msg (by command)',
  'Peak RSS',
  'Tool CPU s',
  'Cores busy',
  'Process s',
];

// ---------------------------------------------------------------------------------------------

interface Variant {
  id: string;
  args: string[];
}

/** Repeated in every round with the floor: the defaults, the former defaults and the best setting found. */
const HEADLINE: Variant[] = [
  { id: 'default', args: [] },
  { id: 'r4-f200', args: ['--receivers', '4', '--max-in-flight', '200'] },
  { id: 'r16-f400', args: ['--receivers', '16', '--max-in-flight', '400'] },
];
/** Tried once, in the first round. */
const EXPLORE: Variant[] = [{ id: 'w5', args: ['--store-batch-wait', '5ms'] }];

function awsMsgLabel(v: Variant): string {
  return `(2) aws-msg process-sqs ${v.args.length ? v.args.join(' ') : '(defaults)'}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** One line of the main table: a case run once, or the median of its rounds. */
interface Line {
  label: string;
  runs: CaseResult[];
  /** The floor of the same round for each run (ratios are taken round by round). */
  floors: Array<CaseResult | undefined>;
}

function lineRow(
  line: Line,
  baseline: number | undefined,
  floorStore: number | undefined,
  extra: Array<string | number> = [],
): Array<string | number> {
  const r = line.runs[Math.floor((line.runs.length - 1) / 2)] as CaseResult;
  const rates = line.runs.map((x) => x.messagesPerSecond);
  const rate = median(rates);
  const ratios = line.runs.flatMap((x, i) => {
    const floor = line.floors[i];
    return floor ? [x.messagesPerSecond / floor.messagesPerSecond] : [];
  });
  const rssKb = Math.max(...line.runs.map((x) => x.maxRssKb));
  return [
    line.label,
    r.nodeVersion,
    fmt(r.messages),
    line.runs.length > 1 ? `${fmt(rate)} (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))})` : fmt(rate),
    ratios.length > 1
      ? `${fmt(median(ratios), 2)}× (${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)})`
      : ratios.length === 1
        ? `${fmt(ratios[0] as number, 2)}×`
        : 'n/a',
    floorStore ? `${fmt(rate / floorStore, 2)}×` : 'n/a',
    baseline ? `${fmt(rate / baseline, 1)}×` : 'n/a',
    `**${fmt(r.sqsRequestsPerMessage, 3)}** (${byType(r.sqsRequests, r.messages)})`,
    r.tool === 'floor' && Object.keys(r.mongoRequests).length === 0
      ? '–'
      : `**${fmt(r.mongoRoundTripsPerMessage, 3)}** (${byType(r.mongoRequests, r.messages)})`,
    mib(rssKb),
    fmt(median(line.runs.map((x) => x.cpuSeconds)), 1),
    fmt(median(line.runs.map((x) => x.coresBusy)), 2),
    fmt(median(line.runs.map((x) => x.processMs)) / 1000, 1),
    ...extra,
  ];
}

async function main(): Promise<void> {
  const started = Date.now();
  requireCommand(GNU_TIME, 'apt-get install time');
  const ferretBinary = ferretDbBinary();
  if (!ferretBinary)
    throw new Error('FerretDB not found; build it with: npm run services:install (needs Go)');
  ensureBenchDependencies();
  const node20 = process.execPath;
  const v20 = process.version;
  const v22 = versionOf(NODE22);
  const moto = SKIP_ARCHIVE ? undefined : motoBinary();
  if (!SKIP_ARCHIVE && !moto) {
    console.error(
      "moto_server not found, so the archive pass is skipped; get it with: pip install 'moto[server]'",
    );
  }

  const emulator = await Emulator.start(node20);
  const sqs = sqsClient(emulator.endpoint);
  onCleanup('sqs client', () => sqs.destroy());
  const bodies = Array.from({ length: N }, (_, i) => messageBody(i));
  const ctx: Context = { emulator, sqs, bodies, ferretBinary };
  const avgBytes = Math.round(bodies.reduce((a, b) => a + Buffer.byteLength(b), 0) / N);
  console.error(
    `bench:sqs: N=${N} messages of ~${avgBytes} bytes, ${ROUNDS} rounds; Node ${v22} for every tool, ${v20} for the driver and peers`,
  );

  const results: CaseResult[] = [];
  const wanted = (id: string) => ONLY === undefined || ONLY.test(id);
  const add = async (
    spec: Omit<CaseSpec, 'messages' | 'node' | 'nodeVersion'> & Partial<CaseSpec>,
  ): Promise<CaseResult | undefined> => {
    if (!wanted(spec.id)) return undefined;
    const result = await runCase(ctx, { messages: N, node: NODE22, nodeVersion: v22, ...spec });
    results.push(result);
    return result;
  };
  const floorLabel = '(1) floor: 8 × ReceiveMessage(10) + DeleteMessageBatch';

  // Rounds: the floor and the headline aws-msg settings side by side, repeated; ratios are taken
  // within each round, so a machine that slows down between rounds moves both sides.
  const floors: Array<CaseResult | undefined> = [];
  const headline = new Map<string, CaseResult[]>(HEADLINE.map((v) => [v.id, []]));
  const explored: Array<{ variant: Variant; result: CaseResult; floor: CaseResult | undefined }> = [];
  let floorStore: CaseResult | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    console.error(`round ${round + 1}/${ROUNDS}`);
    const floor = await add({ id: 'floor', label: floorLabel, tool: 'floor', args: [], mongo: false });
    floors.push(floor);
    for (const v of HEADLINE) {
      const r = await add({
        id: `aws-msg-${v.id}`,
        label: awsMsgLabel(v),
        tool: 'aws-msg',
        args: v.args,
        mongo: true,
      });
      if (r) headline.get(v.id)?.push(r);
    }
    if (round === 0) {
      for (const v of EXPLORE) {
        const r = await add({
          id: `aws-msg-${v.id}`,
          label: awsMsgLabel(v),
          tool: 'aws-msg',
          args: v.args,
          mongo: true,
        });
        if (r) explored.push({ variant: v, result: r, floor });
      }
      floorStore = await add({
        id: 'floor-store',
        label: '(1s) floor with a store: 8 × ReceiveMessage(10) + insertMany + DeleteMessageBatch',
        tool: 'floor',
        args: [],
        mongo: true,
      });
    }
  }
  const floorRate = floors.some(Boolean)
    ? median(floors.flatMap((f) => (f ? [f.messagesPerSecond] : [])))
    : undefined;
  // The default and the best repeated setting (by median rate) get the Node 20 and archive passes.
  const rateOf = (v: Variant) => median((headline.get(v.id) ?? []).map((r) => r.messagesPerSecond));
  const bestVariant = HEADLINE.reduce((a, b) => (rateOf(b) > rateOf(a) ? b : a));
  const passes = bestVariant === HEADLINE[0] ? [bestVariant] : [HEADLINE[0] as Variant, bestVariant];

  const baseline = await add({
    id: 'consumer-message',
    label: '(3) sqs-consumer handleMessage + insertOne (defaults)',
    tool: 'sqs-consumer',
    args: ['message'],
    mongo: true,
    messages: CONSUMER_N,
  });
  const batch = await add({
    id: 'consumer-batch',
    label: '(4) sqs-consumer handleMessageBatch + insertMany, batchSize 10',
    tool: 'sqs-consumer',
    args: ['batch'],
    mongo: true,
  });

  // Memory with 1,000 messages held: store batches of 1,000 that may wait 10 s to fill keep the
  // in-flight limit reached for most of the run.
  const heldArgs = [
    '--max-in-flight',
    '1000',
    '--store-batch-size',
    '1000',
    '--store-batch-wait',
    '10s',
    '--receivers',
    '8',
  ];
  const heldRuns: CaseResult[] = [];
  for (const nodeOptions of [undefined, HEAP_CAP]) {
    const held = await add({
      id: nodeOptions ? 'aws-msg-inflight-1000-heapcap' : 'aws-msg-inflight-1000',
      label: `(2m) aws-msg process-sqs ${heldArgs.join(' ')}${nodeOptions ? ` with NODE_OPTIONS='${nodeOptions}'` : ''}`,
      tool: 'aws-msg',
      args: heldArgs,
      mongo: true,
      sampleInFlight: true,
      ...(nodeOptions ? { nodeOptions } : {}),
    });
    if (held) heldRuns.push(held);
  }

  const node20Results: CaseResult[] = [];
  if (!SKIP_NODE20) {
    for (const v of passes) {
      const r = await add({
        id: `aws-msg-${v.id}-node20`,
        label: awsMsgLabel(v),
        tool: 'aws-msg',
        args: v.args,
        mongo: true,
        node: node20,
        nodeVersion: v20,
      });
      if (r) node20Results.push(r);
    }
  }

  const archiveResults: CaseResult[] = [];
  if (moto && passes.some((v) => wanted(`aws-msg-${v.id}-archive`))) {
    const service: RunningService = await startMoto(moto);
    onCleanup('moto', () => service.stop());
    for (const v of passes) {
      const r = await add({
        id: `aws-msg-${v.id}-archive`,
        label: `${awsMsgLabel(v)} --archive-when ${ARCHIVE_RULE} (MongoDB + S3 on moto)`,
        tool: 'aws-msg',
        args: v.args,
        mongo: true,
        archive: { s3Endpoint: service.endpoint },
      });
      if (r) archiveResults.push(r);
    }
  }

  // The MongoDB peer's own write ceiling, without SQS.
  let microResults: Array<{ mode: string; docs: number; docsPerSecond: number; ms: number }> = [];
  if (wanted('ferret-micro')) {
    const ferret = await startFerret(ferretBinary);
    const micro = await runMeasured(
      node20,
      [join(BENCH_BUILD_DIR, 'ferret-micro.js'), ferret.uri, 'micro', '5000'],
      {
        timeoutMs: 5 * 60_000,
      },
    );
    await ferret.stop();
    if (micro.exitCode !== 0) throw new Error(`ferret-micro failed: ${micro.stderr}`);
    microResults = JSON.parse(micro.stdout.trim()) as typeof microResults;
  }

  // ---- report ----
  const machine = machineInfo();
  const baselineRate = baseline?.messagesPerSecond;
  const floorStoreRate = floorStore?.messagesPerSecond;
  const single = (label: string, r: CaseResult | undefined, floor?: CaseResult): Line[] =>
    r ? [{ label, runs: [r], floors: [floor ?? medianFloor(floors)] }] : [];
  const mainLines: Line[] = [
    ...(floors.some(Boolean)
      ? [{ label: floorLabel, runs: floors.filter((f): f is CaseResult => f !== undefined), floors }]
      : []),
    ...single(floorStore?.label ?? '', floorStore, floors[0]),
    ...HEADLINE.flatMap((v) => {
      const runs = headline.get(v.id) ?? [];
      return runs.length ? [{ label: awsMsgLabel(v), runs, floors: floors.slice(0, runs.length) }] : [];
    }),
    ...explored.flatMap((e) => single(`${awsMsgLabel(e.variant)} (one run)`, e.result, e.floor)),
    ...single(baseline?.label ?? '', baseline),
    ...single(batch?.label ?? '', batch),
  ];
  const headlineRates = HEADLINE.map((v) => ({ v, rate: rateOf(v) }));
  const bestHeadline = { v: bestVariant, rate: rateOf(bestVariant) };

  const lines: string[] = [];
  lines.push(`### SQS → MongoDB, N = ${fmt(N)} (~${avgBytes} B bodies, 10% match \`${ARCHIVE_RULE}\`)`);
  lines.push('');
  lines.push(
    `Rows with a range ran in each of the ${ROUNDS} rounds next to the floor: median (min–max), and the ratio to the floor is taken round by round. ` +
      `(3) processed the first ${fmt(CONSUMER_N)} messages of its ${fmt(N)}-message queue.`,
  );
  lines.push('');
  lines.push(
    markdownTable(
      HEADER,
      mainLines.map((l) => lineRow(l, baselineRate, floorStoreRate)),
    ),
  );
  lines.push('');
  if (headlineRates.length > 0 && Number.isFinite(bestHeadline.rate)) {
    lines.push(
      `Default: ${fmt(headlineRates[0]?.rate ?? Number.NaN)} msgs/s. Best of the repeated settings: \`${bestHeadline.v.args.join(' ') || '(defaults)'}\` → ${fmt(bestHeadline.rate)} msgs/s` +
        (floorRate ? ` (floor median ${fmt(floorRate)}).` : '.'),
    );
    lines.push('');
  }
  if (heldRuns.length > 0) {
    lines.push('### Memory with 1,000 messages in flight');
    lines.push('');
    lines.push(
      markdownTable(
        [...HEADER, 'Max in flight seen'],
        heldRuns.map((h) =>
          lineRow(
            { label: h.label, runs: [h], floors: [medianFloor(floors)] },
            baselineRate,
            floorStoreRate,
            [fmt(h.maxInFlightSeen ?? 0)],
          ),
        ),
      ),
    );
    lines.push('');
  }
  if (node20Results.length > 0) {
    lines.push(`### aws-msg on the machine's Node (${v20}), one run each`);
    lines.push('');
    lines.push(
      markdownTable(
        HEADER,
        node20Results.map((r) =>
          lineRow({ label: r.label, runs: [r], floors: [medianFloor(floors)] }, baselineRate, floorStoreRate),
        ),
      ),
    );
    lines.push('');
  }
  if (archiveResults.length > 0) {
    lines.push('### Second pass: MongoDB + S3 archive on moto, one run each');
    lines.push('');
    lines.push(
      markdownTable(
        [...HEADER, 'S3 requests'],
        archiveResults.map((r) =>
          lineRow(
            { label: r.label, runs: [r], floors: [medianFloor(floors)] },
            baselineRate,
            floorStoreRate,
            [byType(r.s3Requests ?? {}, 1)],
          ),
        ),
      ),
    );
    lines.push('');
  }
  if (microResults.length > 0) {
    lines.push('### FerretDB write ceiling (no SQS, one client process)');
    lines.push('');
    lines.push(
      markdownTable(
        ['Mode', 'Documents', 'docs/s', 'ms'],
        microResults.map((m) => [m.mode, fmt(m.docs), fmt(m.docsPerSecond), fmt(m.ms)]),
      ),
    );
    lines.push('');
  }
  lines.push('### Every run');
  lines.push('');
  for (const r of results) {
    lines.push(
      `- ${r.id} (${r.nodeVersion}): ${fmt(r.messagesPerSecond)} msgs/s; verified ${r.verified}; emulator counted ${JSON.stringify(r.sqsRequests)}, the tool counted ${JSON.stringify(r.toolSqsRequests)}; ` +
        `drain window ${fmt(r.windowMs)} ms; CPU s: tool ${fmt(r.cpuSeconds, 1)}, emulator ${fmt(r.emulatorCpuSeconds, 1)}, FerretDB ${fmt(r.ferretCpuSeconds, 1)}; ` +
        `peak RSS ${mib(r.maxRssKb)}; load before ${r.load1Before}`,
    );
  }
  lines.push('');
  lines.push(
    `Machine: ${machine.cores} × ${machine.cpuModel}, ${machine.memTotalGiB} GiB, ${machine.kernel}; load average at the end ${machine.loadAtStart.join(' ')}. ` +
      `Bench wall time ${fmt((Date.now() - started) / 1000)} s.`,
  );
  const report = lines.join('\n');
  console.log(report);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `sqs-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ n: N, rounds: ROUNDS, versions: { node20: v20, node22: v22 }, machine, results, micro: microResults }, null, 2)}\n`,
  );
  writeFileSync(join(RESULTS_DIR, 'sqs-latest.md'), `${report}\n`);
  console.error(`raw results: ${file.replace(`${REPO_ROOT}/`, '')}`);
}

/** The round whose floor is the median one, for rows that ran once. */
function medianFloor(floors: Array<CaseResult | undefined>): CaseResult | undefined {
  const present = floors
    .filter((f): f is CaseResult => f !== undefined)
    .sort((a, b) => a.messagesPerSecond - b.messagesPerSecond);
  return present[Math.floor((present.length - 1) / 2)];
}

runMain(main);
