/**
 * Test-side access to the peers the global setup started. Suites that need a missing peer are
 * skipped (the global setup already printed why, and REQUIRE_SERVICES=1 turns that into a failure).
 */
import { PEER_ENV, type PeerName } from './services.js';

/** The endpoint (or URI) of a peer, or undefined when it is not available in this run. */
export function peerEndpoint(name: PeerName): string | undefined {
  const value = process.env[PEER_ENV[name]];
  return value === undefined || value === '' ? undefined : value;
}

/** Like `peerEndpoint`, but throws; for use inside a suite already guarded by `describeWithPeers`. */
export function requirePeer(name: PeerName): string {
  const value = peerEndpoint(name);
  if (value === undefined) throw new Error(`peer ${name} is not available`);
  return value;
}

/** `describe` when every named peer is available, else a skipped `describe` (the reason was printed). */
export function describeWithPeers(names: readonly PeerName[], title: string, fn: () => void): void {
  const missing = names.filter((name) => peerEndpoint(name) === undefined);
  if (missing.length === 0) describe(title, fn);
  // Conditional skip: the global setup printed one line per missing peer with how to get it.
  else describe.skip(`${title} [needs ${missing.join(', ')}]`, fn);
}
