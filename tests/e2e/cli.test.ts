import { spawnCli } from '../helpers/cli.js';

// The installed entry point (bin/aws-msg.js over dist/), run as a child process the way cron runs it.
describe('aws-msg binary', () => {
  it('prints the global options with --help', async () => {
    const result = await spawnCli(['--help']).done;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--log-level <level>');
    expect(result.stdout).toContain('--log-format <format>');
    expect(result.stdout).toContain('--env-file <path>');
  });

  it('exits 2 with one line naming --log-level and the allowed values', async () => {
    const result = await spawnCli(['--log-level', 'nope']).done;
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      'aws-msg: --log-level: got "nope", expected one of error, warn, info, debug',
    ]);
  });
});
