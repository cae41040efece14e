import { loadProcessSqsSettings } from '../config/config-loader.js';
import { ExitCode } from '../config/constants.js';
import { ARCHIVE_OPTIONS, AWS_OPTIONS, MONGO_OPTIONS, PROCESS_SQS_OPTIONS } from '../config/settings.js';
import { MSSQL_OPTIONS } from '../config/mssql-settings.js';
import type { ProcessSqsSummary } from '../services/process-sqs.js';
import type { CommandDefinition } from './command.js';
import { emitSummary, formatCounts } from './summary.js';

function rows(s: ProcessSqsSummary): Array<[string, string]> {
  return [
    ['stopped', s.stopReason + (s.error ? ` (${s.error})` : '')],
    ['received', String(s.received)],
    ['stored', `${s.stored} (in ${s.stores.join(', ')})`],
    ['archived', String(s.archived)],
    ['rejected', `${s.rejected} (dead-lettered ${s.deadLettered})`],
    ['failed', `${s.failed} (left on the queue with a backoff)`],
    ['released', String(s.released)],
    ['deleted', String(s.deleted)],
    ['ack errors', String(s.ackErrors)],
    [
      'SQS requests',
      `${s.sqsRequestsTotal} (${s.sqsRequestsPerMessage} per message): ${formatCounts(s.sqsRequests)}`,
    ],
    ['S3 requests', formatCounts(s.s3Requests)],
    ['duration', `${(s.durationMs / 1000).toFixed(1)} s, ${s.messagesPerSecond} msgs/s`],
  ];
}

export const processSqsCommand: CommandDefinition = {
  name: 'process-sqs',
  summary:
    'drain an SQS queue into MongoDB, SQL Server and S3, deleting each message once every store has it',
  description:
    'Receives messages with long polling, validates each JSON body against a JSON Schema, stores it in\n' +
    'every configured store (MongoDB, SQL Server, S3 archive), and deletes it only once all of them confirmed it.\n' +
    'Invalid messages go to --dlq-url with the reason; transient failures come back later with a backoff.\n' +
    'Runs until SIGINT/SIGTERM, or until the queue is empty with --until-empty.',
  options: [PROCESS_SQS_OPTIONS, MONGO_OPTIONS, ARCHIVE_OPTIONS, MSSQL_OPTIONS, AWS_OPTIONS],
  examples: [
    [
      'aws-msg process-sqs --queue-url https://sqs.eu-west-1.amazonaws.com/123456789012/orders --mongo-uri mongodb://db:27017/shop --until-empty',
      'drain the queue into MongoDB and exit when it is empty (cron)',
    ],
    [
      'aws-msg process-sqs --archive-bucket audit --archive-when "type=order,amount>=1000" --dlq-url $DLQ_URL',
      'also archive large orders to S3 and dead-letter invalid messages (queue and store from .env)',
    ],
    [
      'aws-msg process-sqs --until-empty --json | jq .sqsRequestsPerMessage',
      'print the summary as JSON for scripts',
    ],
  ],
  async action(context) {
    const settings = loadProcessSqsSettings(context.sources, context.cwd);
    // Loaded on use: the service's drivers and SDKs would slow every other command's start.
    const { processSqs } = await import('../services/process-sqs.js');
    const summary = await processSqs(settings, { logger: context.logger, signal: context.signal });
    emitSummary(context, 'process-sqs summary', summary, rows(summary), settings.json);
    if (summary.stopReason === 'receive-error' || summary.stopReason === 'store-unavailable')
      return ExitCode.UNAVAILABLE;
    return summary.failed > 0 || summary.rejected > 0 ? ExitCode.PARTIAL_FAILURE : ExitCode.OK;
  },
};
