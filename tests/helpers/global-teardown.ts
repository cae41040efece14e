import type { RunningService } from './services.js';

export default async function globalTeardown(): Promise<void> {
  const running = (globalThis as { __awsMsgServices?: RunningService[] }).__awsMsgServices ?? [];
  await Promise.all(running.map((service) => service.stop()));
}
