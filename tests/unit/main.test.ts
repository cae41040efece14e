import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError, formatError, run } from '../../src/main.js';
import { ConfigError } from '../../src/utils/errors.js';
import { runCli } from '../helpers/cli.js';
import { CaptureStream } from '../helpers/streams.js';

describe('CLI argv table', () => {
  it.each([
    {
      argv: ['--log-level', 'nope'],
      code: 2,
      stderr: 'aws-msg: --log-level: got "nope", expected one of error, warn, info, debug\n',
    },
    {
      argv: ['--log-format', 'xml'],
      code: 2,
      stderr: 'aws-msg: --log-format: got "xml", expected one of json, pretty\n',
    },
    { argv: ['--nope'], code: 2, stderr: "aws-msg: unknown option '--nope'\n" },
    { argv: ['frobnicate'], code: 2, stderr: /^aws-msg: unknown command 'frobnicate'/ },
    {
      argv: ['--env-file', 'does-not-exist.env'],
      code: 2,
      stderr: 'aws-msg: --env-file: got "does-not-exist.env", expected an existing dotenv file\n',
    },
  ])('$argv exits $code', async ({ argv, code, stderr }) => {
    const result = await runCli(argv);
    expect(result.code).toBe(code);
    if (typeof stderr === 'string') expect(result.stderr).toBe(stderr);
    else expect(result.stderr).toMatch(stderr);
    expect(result.stdout).toBe('');
  });

  it('LOG_LEVEL from the environment is validated the same way', async () => {
    const result = await runCli([], { env: { LOG_LEVEL: 'loud' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('aws-msg: LOG_LEVEL: got "loud", expected one of error, warn, info, debug\n');
  });

  it('--help lists the global options and the exit codes on stdout', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    for (const text of [
      '--log-level <level>',
      '--log-format <format>',
      '--env-file <path>',
      '--version',
      'Exit codes:',
    ]) {
      expect(result.stdout).toContain(text);
    }
  });

  it('--version prints the package version', async () => {
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('no command prints the help on stderr and exits 2', async () => {
    const result = await runCli([]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Usage: aws-msg');
    expect(result.stdout).toBe('');
  });
});

describe('the error line', () => {
  it('masks a password inside a mongodb:// URL in an AppError message', () => {
    const error = new AppError('DEPENDENCY_UNAVAILABLE', 'cannot reach mongodb://app:hunter22@db:27017/shop');
    expect(formatError(error)).toBe('aws-msg: cannot reach mongodb://app:***@db:27017/shop');
  });

  it('prints configuration problems intact, one per line', () => {
    const error = new ConfigError([
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither',
      'MSSQL_PASSWORD: got an invalid value, expected a password',
    ]);
    expect(formatError(error)).toBe(
      'aws-msg: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither\n' +
        'aws-msg: MSSQL_PASSWORD: got an invalid value, expected a password',
    );
  });

  it('a replica-set MONGODB_URI is accepted, with no misleading "no store configured"', async () => {
    // Prepare: an invalid second setting makes the run stop at configuration
    const env = {
      SQS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/orders',
      MONGODB_URI: 'mongodb://u:S3cretPw@h1:27017,h2:27017/db?replicaSet=rs0',
      SQS_BATCH_SIZE: '11',
    };

    // Act
    const result = await runCli(['process-sqs'], { env, cwd: mkdtempSync(join(tmpdir(), 'aws-msg-main-')) });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('aws-msg: SQS_BATCH_SIZE: got "11", expected an integer from 1 to 10\n');
  });
});

describe('an internal error', () => {
  /** An environment that fails when a command reads AWS_REGION: a stand-in for any bug. */
  function crashingEnv(): Record<string, string | undefined> {
    return new Proxy<Record<string, string | undefined>>(
      {},
      {
        get: (_target, name) => {
          if (name === 'AWS_REGION') throw new TypeError('boom in a command');
          return undefined;
        },
      },
    );
  }

  async function crash(argv: string[]): Promise<{ code: number; stderr: string }> {
    const stdout = new CaptureStream();
    const stderr = new CaptureStream();
    const code = await run(argv, {
      stdout,
      stderr,
      env: crashingEnv(),
      cwd: mkdtempSync(join(tmpdir(), 'aws-msg-main-')),
      signal: new AbortController().signal,
    });
    return { code, stderr: stderr.text() };
  }

  it('prints the stack when --log-level debug is given as a flag (resolved by config)', async () => {
    const result = await crash(['--log-level', 'debug', 'send-messages', '--file', 'x.json']);
    expect(result.code).toBe(70);
    expect(result.stderr).toMatch(
      /^aws-msg: internal error: boom in a command\nTypeError: boom in a command\n\s+at /,
    );
  });

  it('prints one line otherwise', async () => {
    const result = await crash(['send-messages', '--file', 'x.json']);
    expect(result.code).toBe(70);
    expect(result.stderr).toBe('aws-msg: internal error: boom in a command\n');
  });
});
