/**
 * A command is declared as data (name, option tables, examples) plus one action. `main.ts` turns
 * it into a commander command, resolves the global options and the .env file first, and hands
 * the action a context. Actions normalise settings and call one service; they hold no logic.
 */
import type { Writable } from 'node:stream';
import type { ConfigSources } from '../config/config-loader.js';
import type { Flags } from '../config/config-loader.js';
import type { SpecTable } from '../config/options.js';
import type { GlobalSettings } from '../config/settings.js';
import type { ExitCodeValue } from '../config/constants.js';
import type { Logger } from '../utils/logger.js';

export interface CommandContext {
  global: GlobalSettings;
  /** Environment, .env and this command's own flags (keyed by spec key). */
  sources: ConfigSources;
  logger: Logger;
  /** Results only (reports, --json summaries). Logs go to the logger (stderr). */
  stdout: Writable;
  /** Human-readable summaries and progress; the logger writes here too. */
  stderr: Writable;
  /** Aborted on the first SIGINT/SIGTERM: stop taking new work, finish what is in flight. */
  signal: AbortSignal;
  /** The directory relative paths in flags and variables are resolved against. */
  cwd: string;
  /** Whether stderr is an interactive terminal (progress bars). */
  interactive: boolean;
}

export interface CommandDefinition {
  name: string;
  summary: string;
  /** Shown under the summary in `--help`. */
  description?: string;
  /** Option tables; flags are generated from their specs. Later tables win on duplicate keys. */
  options: SpecTable[];
  /** `aws-msg <name> ...` lines for the help text, each with a comment. */
  examples: ReadonlyArray<readonly [command: string, comment: string]>;
  action(context: CommandContext): Promise<ExitCodeValue>;
}

export type { Flags };
