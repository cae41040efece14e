import type { CommandDefinition } from './command.js';
import { downloadUrlsCommand } from './download-urls.js';
import { initDbCommand } from './init-db.js';
import { processSqsCommand } from './process-sqs.js';
import { sendMessagesCommand } from './send-messages.js';

/** Every command the CLI offers, in help order. A command is listed only once it really works. */
export const COMMANDS: readonly CommandDefinition[] = [
  processSqsCommand,
  sendMessagesCommand,
  downloadUrlsCommand,
  initDbCommand,
];
