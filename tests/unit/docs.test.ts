import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../src/commands/index.js';
import { flagName } from '../../src/config/config-loader.js';
import type { SpecTable } from '../../src/config/options.js';
import { AWS_OPTIONS, GLOBAL_OPTIONS } from '../../src/config/settings.js';
import { REPO_ROOT } from '../helpers/cli.js';

// Documentation drifts silently; these checks make it drift loudly instead.
const envExample = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8');
const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const tables: SpecTable[] = [GLOBAL_OPTIONS, AWS_OPTIONS, ...COMMANDS.flatMap((command) => command.options)];
const variables = [...new Set(tables.flatMap((table) => Object.values(table).flatMap((s) => s.env ?? [])))];
const flags = [
  ...new Set(
    tables.flatMap((table) => Object.values(table).flatMap((s) => (s.flags ? [flagName(s.flags)] : []))),
  ),
];

describe('documentation covers every setting', () => {
  it.each(variables)('.env.example documents %s', (name) => {
    expect(envExample).toMatch(new RegExp(`^#?${name}=`, 'm'));
  });

  it.each(variables)('README names %s', (name) => {
    expect(readme).toContain(`\`${name}\``);
  });

  it.each(flags)('README names %s', (flag) => {
    expect(readme).toContain(`\`${flag}`);
  });

  it('README documents every command', () => {
    for (const command of COMMANDS) expect(readme).toContain(`aws-msg ${command.name}`);
  });
});
