#!/usr/bin/env node
// The installed entry point. It owns the process: signals and the exit code.
// First SIGINT/SIGTERM: graceful stop (in-flight work finishes, unstarted work is released).
// Second: exit at once with 130; what was not acknowledged reappears on the queue by itself.
import { run } from '../dist/main.js';

const controller = new AbortController();
let signals = 0;
const onSignal = (signal) => {
  signals += 1;
  if (signals === 1) {
    process.stderr.write(
      `aws-msg: ${signal} received, finishing in-flight work (send it again to exit now)\n`,
    );
    controller.abort(new Error(signal));
    return;
  }
  process.stderr.write(`aws-msg: second ${signal}, exiting now\n`);
  process.exit(130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
});
process.exitCode = code;
