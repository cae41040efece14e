/**
 * The one HTTP client every download shares: an undici Agent (a keep-alive pool per origin, capped
 * at `perHost` connections, with connect, headers and body timeouts) composed with the redirect
 * interceptor. Deliberately no retry interceptor: retries live in `retry-policy.ts` only.
 */
import { Agent, interceptors, type Dispatcher } from 'undici';

export interface HttpAgentOptions {
  /** Connections per origin; matches the per-host download cap. */
  perHost: number;
  connectTimeoutMs: number;
  /** 0 disables. */
  headersTimeoutMs: number;
  /** 0 disables. */
  bodyTimeoutMs: number;
  /** Hops followed per request; 0 leaves 3xx responses to the caller. */
  maxRedirects: number;
}

/** How long an idle keep-alive connection is kept when the server gives no hint. */
const KEEP_ALIVE_MS = 10_000;

export function createHttpAgent(options: HttpAgentOptions): Dispatcher {
  const agent = new Agent({
    connections: options.perHost,
    pipelining: 1,
    keepAliveTimeout: KEEP_ALIVE_MS,
    keepAliveMaxTimeout: 60_000,
    connect: { timeout: options.connectTimeoutMs },
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
  });
  if (options.maxRedirects === 0) return agent;
  return agent.compose(interceptors.redirect({ maxRedirections: options.maxRedirects }));
}
