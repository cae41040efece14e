/**
 * `npm run bench:download`: aws-msg download-urls against curl, aria2c and wget2 (issue 7), at the
 * same concurrency, against the same nginx.
 *
 * nginx (Debian's) runs in the foreground with a generated config in a temporary directory, on a
 * free port on 127.0.0.1, and serves two sets from there: 2,000 files of 16 KiB and one file of
 * 1 GiB (1 MiB blocks of random bytes, each stamped with its index, so that a download with a
 * block missing or out of place fails the check). Every tool gets the same server (sendfile on,
 * access log off). Each tool runs under /usr/bin/time -v; every run is verified file by file (count,
 * size, SHA-256) before its time is believed. Tools run in a rotated order in each round and the
 * median round is reported.
 *
 * Downloads go to two destinations, each measured on its own: the disk (a directory under the OS
 * temp dir, what users do) and tmpfs (/dev/shm, when present: no disk in the way, so the clients'
 * own costs show; the disk's writeback makes runs there noisier).
 *
 * Environment: BENCH_DOWNLOAD_CONCURRENCY (16), BENCH_DOWNLOAD_ROUNDS (3),
 * BENCH_DOWNLOAD_SMALL_FILES (2000), BENCH_DOWNLOAD_BIG_MIB (1024), BENCH_DOWNLOAD_DEST (disk,tmpfs).
 * Results: stdout (Markdown) and bench/results/download-<time>.json.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from '../tests/helpers/services.js';
import {
  AWS_MSG_BIN,
  GNU_TIME,
  REPO_ROOT,
  RESULTS_DIR,
  envInt,
  fmt,
  isInterrupted,
  load1,
  machineInfo,
  markdownTable,
  mib,
  onCleanup,
  requireCommand,
  runMain,
  runMeasured,
  spawnTracked,
  stopChild,
  tempDir,
  versionOf,
  which,
} from './common.js';

const CONCURRENCY = envInt('BENCH_DOWNLOAD_CONCURRENCY', 16);
const ROUNDS = envInt('BENCH_DOWNLOAD_ROUNDS', 3);
const SMALL_FILES = envInt('BENCH_DOWNLOAD_SMALL_FILES', 2000);
const SMALL_BYTES = 16 * 1024;
const BIG_MIB = envInt('BENCH_DOWNLOAD_BIG_MIB', 1024);
const BIG_BYTES = BIG_MIB * 1024 * 1024;
const RUN_TIMEOUT_MS = 3 * 60_000;
/** Only the tools whose id matches this regular expression (for investigating one tool). */
const ONLY = process.env['BENCH_DOWNLOAD_ONLY'] ? new RegExp(process.env['BENCH_DOWNLOAD_ONLY']) : undefined;
/** Extra node arguments for aws-msg, e.g. --cpu-prof (for investigating, not for figures). */
const NODE_ARGS = (process.env['BENCH_DOWNLOAD_NODE_ARGS'] ?? '').split(' ').filter(Boolean);

interface FileSet {
  id: 'small' | 'big';
  title: string;
  /** name -> { size, sha256 } */
  files: Map<string, { size: number; sha256: string }>;
  urls: string[];
  totalBytes: number;
}

interface Tool {
  id: string;
  /** Which sets this tool runs on. */
  sets: Array<FileSet['id']>;
  /** The command (with the list file and output directory filled in). */
  command(set: FileSet, lists: Lists, out: string): { cmd: string; args: string[] };
  /** Shown in BENCHMARKS.md. */
  display: string;
}

interface Lists {
  json: string;
  txt: string;
  curl: string;
}

interface Run {
  dest: string;
  tool: string;
  set: FileSet['id'];
  round: number;
  wallMs: number;
  maxRssKb: number;
  cpuSeconds: number;
  load1Before: number;
}

// ---------------------------------------------------------------------------------------------

function sha256(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function makeSmallSet(www: string, base: string): FileSet {
  const dir = join(www, 'small');
  mkdirSync(dir, { recursive: true });
  const files = new Map<string, { size: number; sha256: string }>();
  const urls: string[] = [];
  for (let i = 0; i < SMALL_FILES; i++) {
    const name = `f${String(i).padStart(5, '0')}.bin`;
    const data = randomBytes(SMALL_BYTES);
    writeFileSync(join(dir, name), data, { mode: 0o644 });
    files.set(name, { size: SMALL_BYTES, sha256: sha256(data) });
    urls.push(`${base}/small/${name}`);
  }
  return {
    id: 'small',
    title: `${fmt(SMALL_FILES)} × 16 KiB`,
    files,
    urls,
    totalBytes: SMALL_FILES * SMALL_BYTES,
  };
}

/** 1 MiB blocks of random bytes, each stamped with its index: fast to write, all different. */
function makeBigSet(www: string, base: string): FileSet {
  const path = join(www, 'big.bin');
  const block = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  const fd = openSync(path, 'w', 0o644);
  try {
    for (let i = 0; i < BIG_MIB; i++) {
      block.writeUInt32BE(i, 0);
      block.writeUInt32BE(i, block.length - 4);
      writeSync(fd, block);
      hash.update(block);
    }
  } finally {
    closeSync(fd);
  }
  return {
    id: 'big',
    title: `1 × ${BIG_MIB >= 1024 ? `${BIG_MIB / 1024} GiB` : `${BIG_MIB} MiB`}`,
    files: new Map([['big.bin', { size: BIG_BYTES, sha256: hash.digest('hex') }]]),
    urls: [`${base}/big.bin`],
    totalBytes: BIG_BYTES,
  };
}

function writeLists(dir: string, set: FileSet): Lists {
  const lists: Lists = {
    json: join(dir, `${set.id}.json`),
    txt: join(dir, `${set.id}.txt`),
    curl: join(dir, `${set.id}.curl`),
  };
  writeFileSync(lists.json, JSON.stringify(set.urls));
  writeFileSync(lists.txt, `${set.urls.join('\n')}\n`);
  writeFileSync(lists.curl, set.urls.map((u) => `url = "${u}"`).join('\n') + '\n');
  return lists;
}

/** Every expected file is there with its size and SHA-256, and nothing else but tool metadata. */
async function verify(set: FileSet, out: string, tool: string): Promise<void> {
  const present = readdirSync(out).filter((name) => name !== '.aws-msg-manifest.json');
  const extra = present.filter((name) => !set.files.has(name));
  if (extra.length > 0)
    throw new Error(`${tool}: unexpected files in the output: ${extra.slice(0, 5).join(', ')}`);
  for (const [name, expected] of set.files) {
    const path = join(out, name);
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      throw new Error(`${tool}: ${name} is missing (${present.length} of ${set.files.size} files present)`);
    }
    if (size !== expected.size)
      throw new Error(`${tool}: ${name} has ${size} bytes, expected ${expected.size}`);
    const digest = set.id === 'big' ? await sha256File(path) : sha256(readFileSync(path));
    if (digest !== expected.sha256) throw new Error(`${tool}: ${name} content differs`);
  }
}

// ---------------------------------------------------------------------------------------------

function startNginx(prefix: string, www: string, port: number) {
  mkdirSync(join(prefix, 'temp'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  const runningAsRoot = process.getuid?.() === 0;
  writeFileSync(
    conf,
    [
      'daemon off;',
      'master_process on;',
      'worker_processes auto;',
      // As root, nginx drops its workers to this user; the served tree is world-readable.
      runningAsRoot ? 'user nobody nogroup;' : '',
      `pid ${join(prefix, 'nginx.pid')};`,
      `error_log ${join(prefix, 'error.log')} warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      '  sendfile on;',
      '  tcp_nopush on;',
      '  keepalive_timeout 65;',
      '  default_type application/octet-stream;',
      `  client_body_temp_path ${join(prefix, 'temp', 'body')};`,
      `  proxy_temp_path ${join(prefix, 'temp', 'proxy')};`,
      `  fastcgi_temp_path ${join(prefix, 'temp', 'fastcgi')};`,
      `  uwsgi_temp_path ${join(prefix, 'temp', 'uwsgi')};`,
      `  scgi_temp_path ${join(prefix, 'temp', 'scgi')};`,
      '  server {',
      `    listen 127.0.0.1:${port};`,
      `    root ${www};`,
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const check = spawnSync('nginx', ['-t', '-q', '-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], {
    encoding: 'utf8',
  });
  if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
  const child = spawnTracked('nginx', ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  onCleanup('nginx', () => stopChild(child));
  return child;
}

// ---------------------------------------------------------------------------------------------

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const started = Date.now();
  requireCommand(GNU_TIME, 'apt-get install time');
  requireCommand('nginx', 'apt-get install nginx-light (or nginx)');
  requireCommand('curl', 'apt-get install curl');
  requireCommand('aria2c', 'apt-get install aria2');
  const wget2 = which('wget2');
  if (!wget2) console.error('wget2 not found, so it is skipped; get it with: apt-get install wget2');
  const node = process.execPath;

  const root = tempDir('aws-msg-bench-dl-');
  chmodSync(root, 0o755);
  const www = join(root, 'www');
  const work = join(root, 'work');
  mkdirSync(www, { recursive: true, mode: 0o755 });
  mkdirSync(work, { recursive: true });
  const wantedDests = (process.env['BENCH_DOWNLOAD_DEST'] ?? 'disk,tmpfs').split(',');
  const dests: Array<{ id: string; title: string; dir: string }> = [];
  if (wantedDests.includes('disk')) dests.push({ id: 'disk', title: `disk (${tmpdir()})`, dir: work });
  if (wantedDests.includes('tmpfs')) {
    if (existsSync('/dev/shm')) {
      dests.push({
        id: 'tmpfs',
        title: 'tmpfs (/dev/shm)',
        dir: mkdtempSync(join('/dev/shm', 'aws-msg-bench-dl-')),
      });
      const shm = (dests[dests.length - 1] as { dir: string }).dir;
      onCleanup(`rm ${shm}`, () => rmSync(shm, { recursive: true, force: true }));
    } else {
      console.error('/dev/shm is missing, so the tmpfs destination is skipped');
    }
  }
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;

  console.error(`bench:download: creating ${fmt(SMALL_FILES)} × 16 KiB and ${BIG_MIB} MiB under ${root}`);
  const sets = [makeSmallSet(www, base), makeBigSet(www, base)];
  chmodSync(join(www, 'small'), 0o755);
  startNginx(join(root, 'nginx'), www, port);
  await waitForPort(port, 10_000);
  const lists = new Map(sets.map((set) => [set.id, writeLists(work, set)]));

  const c = String(CONCURRENCY);
  const tools: Tool[] = [
    {
      id: 'aws-msg download-urls',
      sets: ['small', 'big'],
      display: `node bin/aws-msg.js download-urls --file LIST.json --out DIR --concurrency ${c} --per-host ${c} --quiet --json`,
      command: (_set, l, out) => ({
        cmd: node,
        args: [
          ...NODE_ARGS,
          AWS_MSG_BIN,
          'download-urls',
          '--file',
          l.json,
          '--out',
          out,
          '--concurrency',
          c,
          '--per-host',
          c,
          '--quiet',
          '--json',
        ],
      }),
    },
    {
      id: 'aws-msg download-urls --hash expected',
      sets: ['small', 'big'],
      display: `(the same) --hash expected   # no SHA-256 of files that carry no expected sum`,
      command: (_set, l, out) => ({
        cmd: node,
        args: [
          ...NODE_ARGS,
          AWS_MSG_BIN,
          'download-urls',
          '--file',
          l.json,
          '--out',
          out,
          '--concurrency',
          c,
          '--per-host',
          c,
          '--quiet',
          '--json',
          '--hash',
          'expected',
        ],
      }),
    },
    {
      id: 'curl --parallel',
      sets: ['small', 'big'],
      display: `curl --parallel --parallel-max ${c} --fail --silent --show-error --remote-name-all --output-dir DIR --config LIST.curl`,
      command: (_set, l, out) => ({
        cmd: 'curl',
        args: [
          '--parallel',
          '--parallel-max',
          c,
          '--fail',
          '--silent',
          '--show-error',
          '--remote-name-all',
          '--output-dir',
          out,
          '--config',
          l.curl,
        ],
      }),
    },
    {
      id: 'aria2c',
      sets: ['small', 'big'],
      display: `aria2c -j ${c} -i LIST.txt -d DIR --console-log-level=warn --summary-interval=0 --download-result=hide   # defaults: -x 1 -s 5, --file-allocation=prealloc`,
      command: (_set, l, out) => ({
        cmd: 'aria2c',
        args: [
          '-j',
          c,
          '-i',
          l.txt,
          '-d',
          out,
          '--console-log-level=warn',
          '--summary-interval=0',
          '--download-result=hide',
        ],
      }),
    },
    {
      id: `aria2c -x ${c} -s ${c}`,
      sets: ['big'],
      display: `aria2c -x ${c} -s ${c} -j ${c} -i LIST.txt -d DIR ...   # one file split over ${c} connections, as users do for big files`,
      command: (_set, l, out) => ({
        cmd: 'aria2c',
        args: [
          '-x',
          c,
          '-s',
          c,
          '-j',
          c,
          '-i',
          l.txt,
          '-d',
          out,
          '--console-log-level=warn',
          '--summary-interval=0',
          '--download-result=hide',
        ],
      }),
    },
  ];
  if (wget2) {
    tools.push({
      id: 'wget2',
      sets: ['small', 'big'],
      display: `wget2 --max-threads ${c} -q -i LIST.txt -P DIR`,
      command: (_set, l, out) => ({ cmd: wget2, args: ['--max-threads', c, '-q', '-i', l.txt, '-P', out] }),
    });
  }

  if (ONLY) {
    const kept = tools.filter((t) => ONLY.test(t.id));
    tools.length = 0;
    tools.push(...kept);
  }
  const runs: Run[] = [];
  for (const dest of dests) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const set of sets) {
        const order = tools.filter((t) => t.sets.includes(set.id));
        const rotated = [...order.slice(round % order.length), ...order.slice(0, round % order.length)];
        for (const tool of rotated) {
          if (isInterrupted()) throw new Error('interrupted');
          const out = join(dest.dir, 'out');
          rmSync(out, { recursive: true, force: true });
          mkdirSync(out);
          spawnSync('sync');
          const { cmd, args } = tool.command(set, lists.get(set.id) as Lists, out);
          const load1Before = load1();
          const run = await runMeasured(cmd, args, { cwd: work, timeoutMs: RUN_TIMEOUT_MS });
          if (run.exitCode !== 0) {
            throw new Error(
              `${tool.id} on ${set.title} exited with ${run.exitCode}:\n${run.stderr.slice(-3000)}`,
            );
          }
          await verify(set, out, tool.id);
          rmSync(out, { recursive: true, force: true });
          runs.push({
            dest: dest.id,
            tool: tool.id,
            set: set.id,
            round,
            wallMs: run.wallMs,
            maxRssKb: run.maxRssKb,
            cpuSeconds: run.userSeconds + run.systemSeconds,
            load1Before,
          });
          console.error(
            `  ${dest.id.padEnd(5)} round ${round + 1}/${ROUNDS} ${set.title.padEnd(12)} ${tool.id.padEnd(40)} ${fmt(run.wallMs / 1000, 2)} s, RSS ${mib(run.maxRssKb)}`,
          );
        }
      }
    }
  }

  // ---- report ----
  const lines: string[] = [];
  const summaries: Array<Record<string, unknown>> = [];
  for (const dest of dests) {
    for (const set of sets) {
      const rowsFor = tools
        .filter((t) => t.sets.includes(set.id))
        .map((tool) => {
          const mine = runs.filter((r) => r.dest === dest.id && r.tool === tool.id && r.set === set.id);
          const wall = median(mine.map((r) => r.wallMs));
          return {
            tool: tool.id,
            wallMs: wall,
            minMs: Math.min(...mine.map((r) => r.wallMs)),
            maxMs: Math.max(...mine.map((r) => r.wallMs)),
            filesPerSecond: (set.files.size * 1000) / wall,
            mbPerSecond: set.totalBytes / 1e6 / (wall / 1000),
            rssKb: Math.max(...mine.map((r) => r.maxRssKb)),
            cpuSeconds: median(mine.map((r) => r.cpuSeconds)),
          };
        });
      const curl = rowsFor.find((r) => r.tool === 'curl --parallel');
      lines.push(`### ${set.title} to ${dest.title}, concurrency ${CONCURRENCY}, median of ${ROUNDS} rounds`);
      lines.push('');
      lines.push(
        markdownTable(
          ['Tool', 'Wall s (median)', 'min–max s', 'files/s', 'MB/s', '× curl', 'Peak RSS (max)', 'CPU s'],
          rowsFor.map((r) => [
            r.tool,
            fmt(r.wallMs / 1000, 2),
            `${fmt(r.minMs / 1000, 2)}–${fmt(r.maxMs / 1000, 2)}`,
            fmt(r.filesPerSecond, set.id === 'big' ? 2 : 0),
            fmt(r.mbPerSecond, 0),
            curl ? `${fmt(curl.wallMs / r.wallMs, 2)}×` : 'n/a',
            mib(r.rssKb),
            fmt(r.cpuSeconds, 2),
          ]),
        ),
      );
      lines.push('');
      summaries.push({ dest: dest.id, set: set.id, rows: rowsFor });
    }
  }
  lines.push('Commands (LIST and DIR stand for the generated list and a fresh output directory):');
  lines.push('');
  for (const tool of tools) lines.push(`- ${tool.id}: \`${tool.display}\``);
  lines.push('');
  const machine = machineInfo();
  const versions = {
    node: process.version,
    nginx: versionOf('nginx', ['-v']),
    curl: versionOf('curl'),
    aria2c: versionOf('aria2c'),
    ...(wget2 ? { wget2: versionOf(wget2) } : {}),
  };
  lines.push(
    `Versions: ${Object.entries(versions)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}`,
  );
  lines.push('');
  lines.push(
    `Machine: ${machine.cores} × ${machine.cpuModel}, ${machine.memTotalGiB} GiB, ${machine.kernel}; load average at the end ${machine.loadAtStart.join(' ')}. ` +
      `Every run verified (file count, sizes, SHA-256). Bench wall time ${fmt((Date.now() - started) / 1000)} s.`,
  );
  const report = lines.join('\n');
  console.log(report);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `download-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ concurrency: CONCURRENCY, rounds: ROUNDS, versions, machine, runs, summaries }, null, 2)}\n`,
  );
  writeFileSync(join(RESULTS_DIR, 'download-latest.md'), `${report}\n`);
  console.error(`raw results: ${file.replace(`${REPO_ROOT}/`, '')}`);
}

runMain(main);
