// Integration tests talk to a real redis-server on a free loopback port, one per test file,
// and a unique queue/key prefix per test so that tests never see each other's jobs.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../src/cli/embedded-redis.ts';

export interface TestRedis {
  url: string;
  server: EmbeddedRedis;
  stop(): Promise<void>;
}

export async function startTestRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lorafuse-redis-'));
  const server = await startEmbeddedRedis({ dir, appendOnly: false });
  return {
    url: server.url,
    server,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A prefix no other test uses. */
export function uniquePrefix(label = 'test'): string {
  return `lf-${label}-${randomUUID().slice(0, 8)}`;
}

export function tempDir(label = 'lorafuse'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
