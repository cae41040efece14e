/**
 * Runs a function package the way the Lambda service does, minus the container: the AWS Lambda
 * Runtime Interface Emulator starts Node.js 22 with aws-lambda-ric, which loads `index.handler`
 * from the unpacked zip; invocations are HTTP POSTs to the emulator.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';
import { freePort, waitForPort, type LambdaRuntimeFiles } from './services.js';

export const LAMBDA_ZIP = join(REPO_ROOT, 'dist', 'lambda', 'aws-msg-lambda.zip');

/** Builds the deployment package with `npm run build:lambda`'s script and unpacks it into a fresh directory. */
export function buildAndUnpackLambda(): string {
  const built = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build-lambda.mjs')], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  if (built.status !== 0) throw new Error(`build-lambda failed: ${built.stderr}${built.stdout}`);
  const dir = mkdtempSync(join(tmpdir(), 'aws-msg-lambda-task-'));
  // Unpacked by another implementation than the one that wrote it, so the zip itself is checked.
  const unpacked = spawnSync('python3', ['-m', 'zipfile', '-e', LAMBDA_ZIP, dir], { encoding: 'utf8' });
  if (unpacked.status !== 0) throw new Error(`cannot unpack ${LAMBDA_ZIP}: ${unpacked.stderr}`);
  return dir;
}

export interface Invocation {
  status: number;
  body: unknown;
}

export interface RunningFunction {
  invoke(event: unknown): Promise<Invocation>;
  /** Everything the emulator and the function printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts the emulator serving one function. `env` is the function's configuration; the emulator
 * passes its own environment on to the runtime, as Lambda passes the function's variables.
 */
export async function startLambdaFunction(options: {
  runtime: LambdaRuntimeFiles;
  taskRoot: string;
  env: Record<string, string>;
  timeoutSeconds?: number;
}): Promise<RunningFunction> {
  const port = await freePort();
  const apiPort = await freePort();
  const child: ChildProcess = spawn(
    options.runtime.rie,
    [
      '--runtime-interface-emulator-address',
      `127.0.0.1:${port}`,
      '--runtime-api-address',
      `127.0.0.1:${apiPort}`,
      options.runtime.node,
      options.runtime.ric,
      'index.handler',
    ],
    {
      cwd: options.taskRoot,
      env: {
        PATH: process.env['PATH'],
        LAMBDA_TASK_ROOT: options.taskRoot,
        _HANDLER: 'index.handler',
        AWS_LAMBDA_FUNCTION_NAME: 'aws-msg',
        AWS_LAMBDA_FUNCTION_TIMEOUT: String(options.timeoutSeconds ?? 30),
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
        NODE_OPTIONS: '--enable-source-maps',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(port, 10_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`aws-lambda-rie did not listen: ${(error as Error).message}\n${output}`);
  }
  return {
    async invoke(event) {
      const response = await fetch(`http://127.0.0.1:${port}/2015-03-31/functions/function/invocations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(event),
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep the text: the emulator answers a timeout in plain words
      }
      return { status: response.status, body };
    },
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };
}
