/** Factories for MessageRecords, the input of every sink. */
import { randomUUID } from 'node:crypto';
import type { MessageRecord } from '../../src/database/sink.js';

/** A valid record; `overrides` replace fields, and `rawBody` follows `body` unless given. */
export function messageRecord(overrides: Partial<MessageRecord> = {}): MessageRecord {
  const messageId = overrides.messageId ?? randomUUID();
  const body = overrides.body ?? { type: 'order', id: messageId, amount: 12.5 };
  const sentAt = new Date('2026-03-01T10:00:00.123Z');
  return {
    key: messageId,
    messageId,
    body,
    rawBody: JSON.stringify(body),
    attributes: { SentTimestamp: String(sentAt.getTime()), ApproximateReceiveCount: '1' },
    messageAttributes: { source: { dataType: 'String', value: 'unit-test' } },
    sentAt,
    receivedAt: new Date('2026-03-01T10:00:01.456Z'),
    receiveCount: 1,
    ...overrides,
  };
}

/** `count` valid records with distinct keys. */
export function messageRecords(count: number, overrides: Partial<MessageRecord> = {}): MessageRecord[] {
  return Array.from({ length: count }, () => messageRecord(overrides));
}
