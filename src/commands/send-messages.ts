import { loadSendMessagesSettings } from '../config/config-loader.js';
import { ExitCode } from '../config/constants.js';
import { AWS_OPTIONS, SEND_MESSAGES_OPTIONS } from '../config/settings.js';
import type { CommandDefinition } from './command.js';
import { emitSummary, formatCounts } from './summary.js';

export const sendMessagesCommand: CommandDefinition = {
  name: 'send-messages',
  summary: 'send a JSON array of message bodies to a queue, 10 per request, several requests at once',
  description:
    'Each element of the array is sent as its JSON text. FIFO queues need --group-id or --group-id-field;\n' +
    'the deduplication id comes from --dedup-id-field or the SHA-256 of the body, so a rerun within\n' +
    "SQS's 5-minute window sends nothing twice.",
  options: [SEND_MESSAGES_OPTIONS, AWS_OPTIONS],
  examples: [
    [
      'aws-msg send-messages --file input_data/messages.json --queue-url $QUEUE_URL',
      'send the sample messages',
    ],
    [
      'aws-msg send-messages --file orders.json --queue-url $FIFO_URL --group-id-field customerId --dedup-id-field orderId',
      'keep each customer in order on a FIFO queue',
    ],
  ],
  async action(context) {
    const settings = loadSendMessagesSettings(context.sources, context.cwd);
    // Loaded on use: the service's drivers and SDKs would slow every other command's start.
    const { sendMessages } = await import('../services/message-sender.js');
    const summary = await sendMessages(settings, { logger: context.logger });
    emitSummary(
      context,
      'send-messages summary',
      summary,
      [
        ['messages', String(summary.messages)],
        ['sent', String(summary.sent)],
        ['failed', String(summary.failed)],
        ['SQS requests', formatCounts(summary.sqsRequests)],
        ['duration', `${(summary.durationMs / 1000).toFixed(1)} s, ${summary.messagesPerSecond} msgs/s`],
      ],
      settings.json,
    );
    return summary.failed > 0 ? ExitCode.PARTIAL_FAILURE : ExitCode.OK;
  },
};
