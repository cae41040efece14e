/**
 * The real protocol peers the integration tests talk to, and the Jest global setup that starts them.
 *
 * - local-aws-sqs: in-process (npm dev dependency).
 * - moto: `moto_server` (Python), for S3 and an SQS cross-check.
 * - FerretDB v1.24.2: a MongoDB wire-protocol server on SQLite, built by `npm run services:install`
 *   into a cache directory outside the repository.
 * - lambda-runtime: the AWS Lambda Runtime Interface Emulator, Node.js 22 and aws-lambda-ric, installed
 *   by `npm run services:install` (scripts/install-lambda-runtime.sh) into the same cache directory.
 *
 * This file imports nothing relative on purpose: Jest loads a global-setup module outside its
 * module mapper, so `./x.js` imports of TypeScript files would not resolve here. Tests import
 * the launchers from this file too, so there is one copy of each.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The peers integration tests may need, and the variables the global setup publishes them in. */
export type PeerName = 'sqs' | 'moto' | 'mongo' | 'mssql' | 'lambda-runtime';

export const PEER_ENV: Record<PeerName, string> = {
  sqs: 'AWS_MSG_TEST_SQS_ENDPOINT',
  moto: 'AWS_MSG_TEST_MOTO_ENDPOINT',
  mongo: 'AWS_MSG_TEST_MONGODB_URI',
  mssql: 'MSSQL_URL',
  // Not a server: the directory holding the Lambda runtime pieces (see lambdaRuntimeFiles).
  'lambda-runtime': 'AWS_MSG_TEST_LAMBDA_RUNTIME_DIR',
};

export const SKIP_ENV: Record<PeerName, string> = {
  sqs: 'AWS_MSG_TEST_SQS_SKIP',
  moto: 'AWS_MSG_TEST_MOTO_SKIP',
  mongo: 'AWS_MSG_TEST_MONGODB_SKIP',
  mssql: 'AWS_MSG_TEST_MSSQL_SKIP',
  'lambda-runtime': 'AWS_MSG_TEST_LAMBDA_RUNTIME_SKIP',
};

/** A free TCP port on 127.0.0.1 (the OS picks it; a race with another process is possible but rare). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** Resolves once something accepts TCP connections on the port, or throws after `timeoutMs`. */
export async function waitForPort(
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
  host = '127.0.0.1',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

export const FERRETDB_VERSION = 'v1.24.2';

export interface RunningService {
  /** http://127.0.0.1:port for SQS and S3, mongodb://127.0.0.1:port/ for MongoDB. */
  endpoint: string;
  stop(): Promise<void>;
}

/** The directory where `npm run services:install` puts built binaries. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['AWS_MSG_CACHE_DIR']) return env['AWS_MSG_CACHE_DIR'];
  return join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'aws-msg');
}

export function ferretDbBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidate = env['FERRETDB_BIN'] ?? join(cacheDir(env), 'bin', 'ferretdb');
  return existsSync(candidate) ? candidate : undefined;
}

/** The Lambda runtime pieces `scripts/install-lambda-runtime.sh` puts in the cache directory. */
export interface LambdaRuntimeFiles {
  /** The Runtime Interface Emulator. */
  rie: string;
  /** Node.js 22. */
  node: string;
  /** aws-lambda-ric's entry point, run by `node`. */
  ric: string;
}

export function lambdaRuntimeFiles(env: NodeJS.ProcessEnv = process.env): LambdaRuntimeFiles | undefined {
  const root = cacheDir(env);
  const modules = join(root, 'lambda-runtime', 'node_modules');
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const files = {
    rie: join(root, 'bin', 'aws-lambda-rie'),
    node: join(modules, `node-linux-${arch}`, 'bin', 'node'),
    ric: join(modules, 'aws-lambda-ric', 'index.mjs'),
  };
  const addon = join(modules, 'aws-lambda-ric', 'rapid-client.node');
  return [files.rie, files.node, files.ric, addon].every((path) => existsSync(path)) ? files : undefined;
}

export function motoBinary(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

export async function startLocalSqs(): Promise<RunningService> {
  const { createSqsServer } = await import('local-aws-sqs');
  const port = await freePort();
  const server = await createSqsServer({ port, hostname: '127.0.0.1', emulateQueueCreationLifecycle: false });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

async function startChild(
  name: string,
  command: string,
  args: string[],
  port: number,
  timeoutMs: number,
): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(new Error(`${name} exited with ${code} before listening: ${stderr}`)),
    ),
  );
  exited.catch(() => undefined);
  const gaveUp = new AbortController();
  try {
    await Promise.race([waitForPort(port, timeoutMs, gaveUp.signal), exited]);
  } catch (error) {
    gaveUp.abort();
    await stopChild(child);
    throw error;
  }
  return child;
}

export async function startMoto(binary = motoBinary()): Promise<RunningService> {
  if (!binary) throw new Error('moto_server not found');
  const port = await freePort();
  const child = await startChild(
    'moto_server',
    binary,
    ['-H', '127.0.0.1', '-p', String(port)],
    port,
    30_000,
  );
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

export interface FerretDb extends RunningService {
  /** Crashes the server (SIGKILL) but keeps its data directory, so `start()` brings the same data back. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
}

/** Starts FerretDB with the SQLite backend in a fresh temporary directory. */
export async function startFerretDb(binary = ferretDbBinary()): Promise<FerretDb> {
  if (!binary) throw new Error('FerretDB binary not found');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'aws-msg-ferretdb-'));
  const args = [
    '--handler=sqlite',
    `--sqlite-url=file:${dir}/`,
    `--listen-addr=127.0.0.1:${port}`,
    '--telemetry=disable',
    `--state-dir=${dir}`,
    '--debug-addr=-',
    '--log-level=warn',
  ];
  let child: ChildProcess | undefined = await startChild('ferretdb', binary, args, port, 30_000);
  return {
    endpoint: `mongodb://127.0.0.1:${port}/`,
    async kill() {
      if (child) await stopChild(child, 'SIGKILL');
      child = undefined;
    },
    async start() {
      if (!child) child = await startChild('ferretdb', binary, args, port, 30_000);
    },
    async stop() {
      if (child) await stopChild(child);
      child = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Global setup: starts every available peer once per run and publishes how to reach it to the
// workers through environment variables (workers are forked after this runs). A missing peer
// skips its suites with one printed line saying how to get it; REQUIRE_SERVICES=1 makes that fatal.
// ---------------------------------------------------------------------------------------------

const running: RunningService[] = [];
(globalThis as { __awsMsgServices?: RunningService[] }).__awsMsgServices = running;

function publish(name: PeerName, endpoint: string): void {
  process.env[PEER_ENV[name]] = endpoint;
  delete process.env[SKIP_ENV[name]];
}

async function tryStart(
  name: PeerName,
  start: () => Promise<RunningService>,
  missing: string[],
): Promise<void> {
  try {
    const service = await start();
    running.push(service);
    publish(name, service.endpoint);
  } catch (error) {
    missing.push(`${name}: failed to start: ${(error as Error).message}`);
    process.env[SKIP_ENV[name]] = `failed to start: ${(error as Error).message}`;
  }
}

export default async function globalSetup(): Promise<void> {
  const missing: string[] = [];
  const skip = (name: PeerName, reason: string) => {
    process.env[SKIP_ENV[name]] = reason;
    missing.push(`${name}: ${reason}`);
  };

  const starts: Promise<void>[] = [];
  // SQS: local-aws-sqs in-process, unless TEST_SQS_ENDPOINT names another one.
  if (process.env['TEST_SQS_ENDPOINT']) publish('sqs', process.env['TEST_SQS_ENDPOINT']);
  else starts.push(tryStart('sqs', startLocalSqs, missing));

  // moto: S3 and the SQS cross-check.
  if (process.env['TEST_MOTO_ENDPOINT']) publish('moto', process.env['TEST_MOTO_ENDPOINT']);
  else if (motoBinary()) starts.push(tryStart('moto', () => startMoto(), missing));
  else
    skip(
      'moto',
      "moto_server not on PATH; get it with: pip install 'moto[server]' (or set TEST_MOTO_ENDPOINT)",
    );

  // MongoDB: a real one from MONGODB_URI, else FerretDB from the cache.
  if (process.env['MONGODB_URI']) publish('mongo', process.env['MONGODB_URI']);
  else if (ferretDbBinary()) starts.push(tryStart('mongo', () => startFerretDb(), missing));
  else
    skip(
      'mongo',
      'no FerretDB binary and MONGODB_URI is unset; get it with: npm run services:install (needs Go), or set MONGODB_URI',
    );
  const ferret = ferretDbBinary();
  if (ferret) process.env['AWS_MSG_TEST_FERRETDB_BIN'] = ferret;

  // The Lambda runtime is files, not a server: check that they are there.
  if (lambdaRuntimeFiles()) publish('lambda-runtime', cacheDir());
  else
    skip(
      'lambda-runtime',
      `no Lambda runtime in ${cacheDir()}; get it with: npm run services:install (needs Go, cmake, g++ and autotools)`,
    );

  await Promise.all(starts);

  for (const line of missing) console.log(`\nSKIP ${line}`);
  if (!process.env['MSSQL_URL']) {
    console.log(
      '\nSKIP mssql: MSSQL_URL is unset, so the SQL Server integration suites do not run ' +
        '(SQL Server needs Docker; see README "Running the tests against Docker")',
    );
  }
  if (missing.length > 0 && process.env['REQUIRE_SERVICES'] === '1') {
    await Promise.all(running.map((service) => service.stop()));
    throw new Error(`REQUIRE_SERVICES=1 but some peers are unavailable:\n${missing.join('\n')}`);
  }
}
