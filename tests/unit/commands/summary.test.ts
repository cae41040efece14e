import type { CommandContext } from '../../../src/commands/command.js';
import { emitSummary } from '../../../src/commands/summary.js';
import { createLogger } from '../../../src/utils/logger.js';
import { CaptureStream } from '../../helpers/streams.js';

function context(logFormat: 'json' | 'pretty'): CommandContext & { out: CaptureStream; err: CaptureStream } {
  const out = new CaptureStream();
  const err = new CaptureStream();
  return {
    global: { logLevel: 'info', logFormat, envFile: '.env' },
    sources: { flags: {}, env: {}, dotenv: {} },
    logger: createLogger({ level: 'info', format: 'json', stream: err }),
    stdout: out,
    stderr: err,
    signal: new AbortController().signal,
    cwd: '/',
    interactive: false,
    out,
    err,
  };
}

// The error of a stopped run quotes a driver or SDK message, which may hold a secret.
const error = 'MongoDB h:27017/db.messages: cannot reach mongodb://app:Sum-S3cret@h:27017/db';
const summary = { stopReason: 'store-unavailable', error, received: 0 };
const rows = [['stopped', `store-unavailable (${error})`]] as const;

describe('run summaries mask secrets in the error they quote', () => {
  it('in the --json object on stdout and in the text block on stderr', () => {
    // Prepare
    const ctx = context('pretty');

    // Act
    emitSummary(ctx, 'process-sqs summary', summary, rows, true);

    // Assess
    expect(JSON.parse(ctx.out.text())).toEqual({
      stopReason: 'store-unavailable',
      error: 'MongoDB h:27017/db.messages: cannot reach mongodb://app:***@h:27017/db',
      received: 0,
    });
    expect(ctx.err.text()).toContain('mongodb://app:***@h:27017/db');
    expect(ctx.out.text() + ctx.err.text()).not.toContain('Sum-S3cret');
  });

  it('in the run_summary log event', () => {
    // Prepare
    const ctx = context('json');

    // Act
    emitSummary(ctx, 'process-sqs summary', summary, rows, false);

    // Assess
    expect(ctx.out.text()).toBe('');
    expect(ctx.err.text()).toContain('"event":"run_summary"');
    expect(ctx.err.text()).not.toContain('Sum-S3cret');
  });
});
