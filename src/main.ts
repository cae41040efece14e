/**
 * Entry point: parse flags -> load config -> run one command -> map errors to exit codes.
 * This file holds the only top-level catch.
 */
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { Command, CommanderError, Option } from 'commander';
import { flagName, loadGlobalConfig, withFlags, type Env, type Flags } from './config/config-loader.js';
import { CLI_NAME, ExitCode, type ExitCodeValue } from './config/constants.js';
import { formatDuration, type Spec, type SpecTable } from './config/options.js';
import { GLOBAL_OPTIONS, type GlobalSettings } from './config/settings.js';
import { AppError, isAppError } from './utils/errors.js';
import { createLogger, redactString, type Logger } from './utils/logger.js';
import type { CommandContext, CommandDefinition } from './commands/command.js';
import { COMMANDS } from './commands/index.js';

const pkg = createRequire(import.meta.url)('../package.json') as { version: string };

export interface RunIo {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
  env: Env;
  cwd: string;
  /** Aborted on the first SIGINT/SIGTERM. The bin installs the signal handlers. */
  signal: AbortSignal;
}

function describeSpec(s: Spec<unknown>): string {
  const extras: string[] = [];
  if (s.env?.length) extras.push(`env ${s.env.join(', ')}`);
  if (s.defaultLabel) extras.push(`default: ${s.defaultLabel}`);
  else if (s.default !== undefined && typeof s.default !== 'function' && s.default !== false) {
    const looksLikeMs = /Ms$/.test(s.flags ?? '') || /duration/.test(s.flags ?? '');
    extras.push(
      `default: ${looksLikeMs && typeof s.default === 'number' ? formatDuration(s.default) : String(s.default)}`,
    );
  }
  if (s.required) extras.push('required');
  return extras.length ? `${s.description} (${extras.join('; ')})` : s.description;
}

/** Adds one commander option per spec that has a flag; returns spec key -> commander attribute. */
function addSpecOptions(command: Command, tables: SpecTable[]): Map<string, string> {
  const attributes = new Map<string, string>();
  const merged: SpecTable = Object.assign({}, ...tables);
  for (const [key, s] of Object.entries(merged)) {
    if (!s.flags) continue;
    const option = new Option(s.flags, describeSpec(s));
    command.addOption(option);
    attributes.set(key, option.attributeName());
  }
  return attributes;
}

function pickFlags(values: Record<string, unknown>, attributes: Map<string, string>): Flags {
  const flags: Flags = {};
  for (const [key, attribute] of attributes) {
    const value = values[attribute];
    if (typeof value === 'string' || typeof value === 'boolean') flags[key] = value;
  }
  return flags;
}

function examplesText(definition: CommandDefinition): string {
  if (definition.examples.length === 0) return '';
  const lines = definition.examples.map(([cmd, comment]) => `  # ${comment}\n  $ ${cmd}`);
  return `\nExamples:\n${lines.join('\n\n')}\n`;
}

const EXIT_CODES_HELP = `
Exit codes:
  0    success
  1    finished, but some items failed (messages not stored, URLs not downloaded)
  2    bad usage, configuration or input file
  3    a queue, bucket or database was unreachable at start
  70   internal error (a bug; please report it)
  130  interrupted by a second SIGINT/SIGTERM
`;

/**
 * Builds the program. Exported for the argv-table tests. `onGlobal` receives the global settings
 * once they are resolved (flag > environment > .env), for the top-level catch.
 */
export function buildProgram(
  io: RunIo,
  onExit: (code: ExitCodeValue) => void,
  onGlobal: (global: GlobalSettings) => void = () => undefined,
): Command {
  const program = new Command(CLI_NAME);
  const globalAttributes = addSpecOptions(program, [GLOBAL_OPTIONS]);
  program
    .description(
      'Drain SQS into MongoDB, SQL Server and S3 without losing or duplicating a message,\n' +
        'and download long URL lists concurrently with retries.',
    )
    .version(pkg.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(`${CLI_NAME}: ${text.replace(/^error: /, '')}`),
    })
    .addHelpText('after', EXIT_CODES_HELP);

  const globalContext = () => {
    const { global, sources } = loadGlobalConfig(pickFlags(program.opts(), globalAttributes), io.env, io.cwd);
    onGlobal(global);
    return { global, sources };
  };

  for (const definition of COMMANDS) {
    const command = program.command(definition.name).summary(definition.summary);
    command.description(definition.description ?? definition.summary);
    const attributes = addSpecOptions(command, definition.options);
    command.addHelpText('after', examplesText(definition));
    command.action(async () => {
      const { global, sources } = globalContext();
      const logger: Logger = createLogger({
        level: global.logLevel,
        format: global.logFormat,
        stream: io.stderr,
      });
      const context: CommandContext = {
        global,
        sources: withFlags(sources, pickFlags(command.opts(), attributes)),
        logger: logger.child({ command: definition.name }),
        stdout: io.stdout,
        stderr: io.stderr,
        cwd: io.cwd,
        signal: io.signal,
        interactive: io.stderr.isTTY === true,
      };
      onExit(await definition.action(context));
    });
  }

  // No command: still validate the global options (so `--log-level nope` is reported), then show help.
  program.allowExcessArguments(true).action(() => {
    const [word] = program.args;
    if (word !== undefined) {
      const known = COMMANDS.map((c) => c.name);
      program.error(`unknown command '${word}'${known.length ? ` (commands: ${known.join(', ')})` : ''}`);
    }
    globalContext();
    program.outputHelp({ error: true });
    onExit(ExitCode.USAGE);
  });
  return program;
}

/** One line per problem, prefixed with the tool name, with secrets masked. */
export function formatError(error: unknown): string {
  if (isAppError(error)) {
    return error.message
      .split('\n')
      .map((line) => `${CLI_NAME}: ${redactString(line)}`)
      .join('\n');
  }
  const message = error instanceof Error ? error.message : String(error);
  return `${CLI_NAME}: internal error: ${redactString(message)}`;
}

/** Runs the CLI and returns the exit code. Never throws. */
export async function run(argv: readonly string[], io: RunIo): Promise<ExitCodeValue> {
  let exitCode: ExitCodeValue = ExitCode.OK;
  const resolved: { global?: GlobalSettings } = {};
  const program = buildProgram(
    io,
    (code) => {
      exitCode = code;
    },
    (global) => {
      resolved.global = global;
    },
  );
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      const ok = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(error.code);
      return ok && error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    io.stderr.write(`${formatError(error)}\n`);
    if (isAppError(error)) return error.exitCode;
    // The log level as config resolved it (--log-level, LOG_LEVEL or .env); a crash while the
    // global options themselves load has no level yet, and prints no stack.
    if (resolved.global?.logLevel === 'debug' && error instanceof Error && error.stack) {
      io.stderr.write(`${redactString(error.stack)}\n`);
    }
    return ExitCode.INTERNAL;
  }
}

/** Exported for tests that need to name a flag the same way the CLI does. */
export { flagName, AppError };
