/**
 * Shared pieces of the benchmarks: where things are, child processes measured with GNU time,
 * cleanup that runs on success, failure and SIGINT/SIGTERM alike, machine facts and tables.
 *
 * Benchmarks are compiled by `bench/tsconfig.json` into build-tmp/ and run from there, so paths
 * are found by walking up to the repository's package.json, never relative to this file.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the first parent directory whose package.json is named aws-msg. */
export const REPO_ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'aws-msg') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the aws-msg repository root');
    dir = parent;
  }
})();

export const BENCH_DIR = join(REPO_ROOT, 'bench');
/** Compiled bench scripts (bench/tsconfig.json's outDir + the bench folder). */
export const BENCH_BUILD_DIR = join(REPO_ROOT, 'build-tmp', 'bench');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const AWS_MSG_BIN = join(REPO_ROOT, 'bin', 'aws-msg.js');
/** Node 22 from the npm package `node@22`, installed into bench/node_modules. */
export const NODE22 = join(BENCH_DIR, 'node_modules', 'node', 'bin', 'node');
export const GNU_TIME = '/usr/bin/time';

// ---------------------------------------------------------------------------------------------
// Cleanup: every resource registers how to release it; it runs once, in reverse order, on a
// normal end, an error, or the first SIGINT/SIGTERM (a second one exits at once).
// ---------------------------------------------------------------------------------------------

type CleanupFn = () => void | Promise<void>;
const cleanups: Array<{ name: string; fn: CleanupFn }> = [];
const liveChildren = new Set<ChildProcess>();
let interrupted = false;

export function onCleanup(name: string, fn: CleanupFn): () => void {
  const entry = { name, fn };
  cleanups.push(entry);
  return () => {
    const index = cleanups.indexOf(entry);
    if (index >= 0) cleanups.splice(index, 1);
  };
}

/** Kills a child and its process group (children are started detached, in their own group). */
export function killTree(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Stops a child: SIGTERM to its group, SIGKILL after `graceMs`. */
export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => killTree(child, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    killTree(child, 'SIGTERM');
  });
}

export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const { name, fn } = cleanups.pop() as { name: string; fn: CleanupFn };
    try {
      await fn();
    } catch (error) {
      console.error(`cleanup ${name} failed: ${(error as Error).message}`);
    }
  }
  for (const child of liveChildren) killTree(child, 'SIGKILL');
}

/** Runs `main`, then the cleanups, whatever happens; sets the exit code. */
export function runMain(main: () => Promise<void>): void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      for (const child of liveChildren) killTree(child, 'SIGKILL');
      process.exit(130);
    }
    interrupted = true;
    console.error(`\n${signal}: stopping children and cleaning up (again to exit at once)`);
    void runCleanups().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  main()
    .then(
      () => runCleanups(),
      async (error: unknown) => {
        console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
        process.exitCode = 1;
        await runCleanups();
      },
    )
    .finally(() => {
      if (!interrupted) process.exit();
    });
}

export function isInterrupted(): boolean {
  return interrupted;
}

/** A temporary directory removed at cleanup. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Tracks a child so that cleanup kills it (and its group) even after a failure or a signal. */
export function track<T extends ChildProcess>(child: T): T {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

/** Spawns a long-lived helper in its own process group, killed at cleanup. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return track(spawn(command, args, { detached: true, ...options }));
}

// ---------------------------------------------------------------------------------------------
// Measured runs
// ---------------------------------------------------------------------------------------------

export interface Measured {
  command: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Wall time seen by the driver, spawn to exit. */
  wallMs: number;
  /** GNU time: peak resident set size of the measured process (its largest descendant). */
  maxRssKb: number;
  userSeconds: number;
  systemSeconds: number;
}

function parseTimeReport(text: string): { maxRssKb: number; userSeconds: number; systemSeconds: number } {
  const num = (label: string): number => {
    const match = new RegExp(`${label}:\\s*([0-9.]+)`).exec(text);
    return match ? Number(match[1]) : Number.NaN;
  };
  return {
    maxRssKb: num('Maximum resident set size \\(kbytes\\)'),
    userSeconds: num('User time \\(seconds\\)'),
    systemSeconds: num('System time \\(seconds\\)'),
  };
}

/**
 * Runs one tool under `/usr/bin/time -v` and waits for it. The report goes to a file, so the
 * tool's own stderr stays clean. Killed (with its group) at `timeoutMs` or on cleanup.
 */
export async function runMeasured(
  command: string,
  args: string[],
  options: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    timeoutMs: number;
    /** Keep at most this many characters of stdout (default 4 MiB). */
    maxStdout?: number;
    onStdoutLine?: (line: string) => void;
  },
): Promise<Measured> {
  const dir = tempDir('aws-msg-bench-time-');
  const report = join(dir, 'time.txt');
  const started = performance.now();
  const child = spawnTracked(GNU_TIME, ['-v', '-o', report, command, ...args], {
    env: options.env ?? process.env,
    cwd: options.cwd ?? REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let partial = '';
  const maxStdout = options.maxStdout ?? 4 * 1024 * 1024;
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    if (stdout.length < maxStdout) stdout += text;
    if (options.onStdoutLine) {
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.onStdoutLine(line);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
  });
  const timer = setTimeout(() => {
    stderr += `\n[bench] killed after ${options.timeoutMs} ms`;
    killTree(child, 'SIGKILL');
  }, options.timeoutMs);
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  clearTimeout(timer);
  const wallMs = performance.now() - started;
  const timeText = existsSync(report) ? readFileSync(report, 'utf8') : '';
  rmSync(dir, { recursive: true, force: true });
  return {
    command: [command, ...args].join(' '),
    exitCode,
    stdout,
    stderr,
    wallMs,
    ...parseTimeReport(timeText),
  };
}

/** Path of a command on PATH, or undefined. */
export function which(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

/** Fails with an install hint when a required command is missing. */
export function requireCommand(command: string, hint: string): string {
  const path = command.startsWith('/') ? (existsSync(command) ? command : undefined) : which(command);
  if (!path) throw new Error(`${command} not found; install it with: ${hint}`);
  return path;
}

/** First line of `command --version`-like output. */
export function versionOf(command: string, args: string[] = ['--version']): string {
  const out = spawnSync(command, args, { encoding: 'utf8' });
  const text = `${out.stdout ?? ''}${out.stderr ?? ''}`.trim();
  return text.split('\n')[0] ?? 'unknown';
}

/**
 * Installs the bench-only dependencies (sqs-consumer, node@22, the SQS client they share) into
 * bench/node_modules when they are missing, from bench/package-lock.json. The product's tree is
 * untouched, so `npm ci` at the root stays light.
 */
export function ensureBenchDependencies(): void {
  const marker = join(BENCH_DIR, 'node_modules', 'sqs-consumer', 'package.json');
  if (existsSync(marker) && existsSync(NODE22)) return;
  const hasLock = existsSync(join(BENCH_DIR, 'package-lock.json'));
  console.error(`installing bench dependencies into bench/node_modules (npm ${hasLock ? 'ci' : 'install'})`);
  const result = spawnSync(
    'npm',
    [hasLock ? 'ci' : 'install', '--prefix', BENCH_DIR, '--no-audit', '--no-fund'],
    { stdio: 'inherit' },
  );
  if (result.status !== 0)
    throw new Error('npm could not install the bench dependencies (bench/package.json)');
  if (!existsSync(NODE22)) throw new Error(`node@22 did not install its binary at ${NODE22}`);
}

// ---------------------------------------------------------------------------------------------
// Machine facts and formatting
// ---------------------------------------------------------------------------------------------

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memTotalGiB: number;
  kernel: string;
  loadAtStart: number[];
}

export function machineInfo(): MachineInfo {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const processors = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  return {
    cpuModel: model,
    cores: processors || cpus().length,
    memTotalGiB: Math.round((memKb / 1024 / 1024) * 10) / 10,
    kernel: readFileSync('/proc/version', 'utf8').split(' ').slice(0, 3).join(' '),
    loadAtStart: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

/** User + system CPU seconds a live process has used so far (from /proc; 0 when it is gone). */
export function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at index 2 of this split.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

const CLOCK_TICKS = ((): number => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const value = Number(out.stdout?.trim());
  return Number.isFinite(value) && value > 0 ? value : 100;
})();

/** The 1-minute load average, rounded. */
export function load1(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

export function markdownTable(header: string[], rows: Array<Array<string | number>>): string {
  const lines = [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(String).join(' | ')} |`),
  ];
  return lines.join('\n');
}

export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** KiB (as GNU time reports them) to MiB. */
export function mib(kb: number): string {
  return Number.isFinite(kb) ? `${fmt(kb / 1024, 0)} MiB` : 'n/a';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Integer from an environment variable, else the default. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}
