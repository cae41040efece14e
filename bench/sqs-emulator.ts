/**
 * local-aws-sqs in a process of its own, with request accounting at the emulator, so every tool
 * is counted the same way and none of them shares its event loop with the queue service.
 *
 * It counts requests by action (the JSON protocol's X-Amz-Target) and records when the first
 * ReceiveMessage arrived and when the last DeleteMessage(Batch) was answered: the drain window,
 * measured at the server for every tool alike (process start-up and a final empty long poll are
 * outside it). The parent talks to it over the fork IPC channel:
 *   -> { type: 'reset' }            <- { type: 'reset-done' }
 *   -> { type: 'snapshot' }         <- { type: 'snapshot', ... }
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSqsServer } from 'local-aws-sqs';

export interface EmulatorSnapshot {
  type: 'snapshot';
  requests: Record<string, number>;
  /** performance.timeOrigin-based epoch ms of the first ReceiveMessage since the last reset. */
  firstReceiveAt: number | null;
  /** Epoch ms at which the last DeleteMessage/DeleteMessageBatch response finished. */
  lastDeleteAt: number | null;
  /** CPU time the emulator process used since the last reset (user + system, ms). */
  cpuMs: number;
}

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: sqs-emulator PORT');

let requests = new Map<string, number>();
let firstReceiveAt: number | null = null;
let lastDeleteAt: number | null = null;
let cpuAtReset = process.cpuUsage();

const server = await createSqsServer({ port, hostname: '127.0.0.1', emulateQueueCreationLifecycle: false });
server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
  const target = req.headers['x-amz-target'];
  const action = typeof target === 'string' ? (target.split('.')[1] ?? target) : 'Query';
  requests.set(action, (requests.get(action) ?? 0) + 1);
  if (action === 'ReceiveMessage' && firstReceiveAt === null) firstReceiveAt = Date.now();
  if (action === 'DeleteMessageBatch' || action === 'DeleteMessage') {
    res.once('finish', () => {
      lastDeleteAt = Date.now();
    });
  }
});

process.on('message', (message: { type?: string }) => {
  if (message.type === 'reset') {
    requests = new Map();
    firstReceiveAt = null;
    lastDeleteAt = null;
    cpuAtReset = process.cpuUsage();
    process.send?.({ type: 'reset-done' });
  } else if (message.type === 'snapshot') {
    const cpu = process.cpuUsage(cpuAtReset);
    const snapshot: EmulatorSnapshot = {
      type: 'snapshot',
      requests: Object.fromEntries([...requests.entries()].sort(([a], [b]) => a.localeCompare(b))),
      firstReceiveAt,
      lastDeleteAt,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    };
    process.send?.(snapshot);
  }
});
process.on('disconnect', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
process.send?.({ type: 'ready', endpoint: `http://127.0.0.1:${port}` });
