/**
 * Per test: a fresh fault-injecting HTTP server and an empty working directory, both removed
 * afterwards, and a way to write the URL list there.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFaultServer, type FaultServer } from './http-fault-server.js';

export interface DownloadFixture {
  readonly server: FaultServer;
  readonly dir: string;
  /** Writes `list` as `urls.json` in `dir` and returns its path. */
  listFile(list: unknown): string;
}

export function useDownloadFixture(dirPrefix: string): DownloadFixture {
  let server: FaultServer | undefined;
  let dir: string | undefined;
  beforeEach(async () => {
    server = await startFaultServer();
    dir = mkdtempSync(join(tmpdir(), dirPrefix));
  });
  afterEach(async () => {
    await server?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  const fixture: DownloadFixture = {
    get server() {
      if (server === undefined) throw new Error('the fixture is used outside a test');
      return server;
    },
    get dir() {
      if (dir === undefined) throw new Error('the fixture is used outside a test');
      return dir;
    },
    listFile(list) {
      const path = join(fixture.dir, 'urls.json');
      writeFileSync(path, JSON.stringify(list));
      return path;
    },
  };
  return fixture;
}
