import type { CommandDefinition } from './command.js';

/** Every command the CLI offers, in help order. A command is listed only once it really works. */
export const COMMANDS: readonly CommandDefinition[] = [];
