import { runCli } from '../helpers/cli.js';

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
