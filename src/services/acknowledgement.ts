/**
 * The acknowledgement contract, in one place. SQS is at-least-once, so a message is deleted only
 * when every store confirmed it; everything else leaves it on the queue in a deliberate state.
 *
 *   stored                 -> delete
 *   rejected, with a DLQ   -> send to the DLQ with the reason, then delete (once the DLQ has it)
 *   rejected, no DLQ       -> hide it for the poison backoff; the queue's redrive policy moves it
 *   failed (transient)     -> hide it for an exponential backoff computed from ApproximateReceiveCount
 *   released               -> make it visible again at once (visibility 0), or after its delay
 */
import { SQS_MAX_VISIBILITY_TIMEOUT_SECONDS } from '../config/constants.js';
import type { Outcome } from './message-processor.js';

export type AckAction =
  | { kind: 'delete' }
  | { kind: 'dead-letter'; reason: string }
  | { kind: 'retry-later'; visibilityTimeoutSeconds: number; reason: string }
  | { kind: 'release'; visibilityTimeoutSeconds: number };

export interface AckPolicy {
  /** Whether a dead-letter queue is configured (`--dlq-url`). */
  hasDlq: boolean;
  /** Backoff after the first transient failure; doubles with every receive. */
  retryBackoffMs: number;
  /** Upper bound of the transient backoff. */
  retryBackoffMaxMs: number;
  /** Without a DLQ, how long an invalid message stays hidden before the next receive. */
  poisonBackoffMs: number;
}

/**
 * Exponential backoff in whole seconds: base × 2^(receiveCount − 1), capped, with "equal jitter"
 * (half fixed, half random) so that messages failed by one outage do not all come back together.
 */
export function backoffSeconds(
  receiveCount: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(receiveCount, 1) - 1, 30);
  const full = Math.min(baseMs * 2 ** exponent, maxMs);
  const jittered = full / 2 + (random() * full) / 2;
  return clampVisibility(Math.ceil(jittered / 1000));
}

export function clampVisibility(seconds: number): number {
  return Math.min(Math.max(Math.round(seconds), 0), SQS_MAX_VISIBILITY_TIMEOUT_SECONDS);
}

export function decideAck(
  outcome: Outcome,
  receiveCount: number,
  policy: AckPolicy,
  random: () => number = Math.random,
): AckAction {
  switch (outcome.status) {
    case 'stored':
      return { kind: 'delete' };
    case 'rejected':
      if (policy.hasDlq) return { kind: 'dead-letter', reason: outcome.reason };
      return {
        kind: 'retry-later',
        visibilityTimeoutSeconds: clampVisibility(policy.poisonBackoffMs / 1000),
        reason: outcome.reason,
      };
    case 'failed':
      return {
        kind: 'retry-later',
        visibilityTimeoutSeconds: backoffSeconds(
          receiveCount,
          policy.retryBackoffMs,
          policy.retryBackoffMaxMs,
          random,
        ),
        reason: outcome.reason,
      };
    case 'released':
      return { kind: 'release', visibilityTimeoutSeconds: clampVisibility(outcome.delaySeconds ?? 0) };
  }
}
