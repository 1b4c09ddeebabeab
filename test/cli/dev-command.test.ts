import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { spawnLorafuse, waitForOutput } from '../helpers/lorafuse-process.ts';
import { acceptsConnections as accepts } from '../helpers/net.ts';
import { tempDir } from '../helpers/redis.ts';

describe('lorafuse dev', () => {
  it('starts a private redis-server (AOF) + API + worker, answers, and stops everything on SIGTERM', async () => {
    const data = tempDir('lorafuse-dev');
    const dev = spawnLorafuse(['dev'], {
      REDIS_URL: '',
      PORT: '0',
      LORAFUSE_DATA_DIR: data.dir,
      LOG_LEVEL: 'warn',
    });
    const { child } = dev;
    try {
      // Started once the local key is printed (the line after "API on").
      await waitForOutput(
        dev,
        'dev to print its API address and key',
        /API on http:\/\/127\.0\.0\.1:\d+[\s\S]*LORAFUSE_API_KEY=lfk_\S+\n/,
      );
      const output = dev.output();
      const apiUrl = (/API on (http:\/\/127\.0\.0\.1:\d+)/.exec(output) as RegExpExecArray)[1];
      const redisPort = Number(
        (/redis-server at redis:\/\/127\.0\.0\.1:(\d+)/.exec(output) as RegExpExecArray)[1],
      );
      const ready = await fetch(`${apiUrl}/readyz`);
      assert.equal(ready.status, 200, await ready.text());
      // Auth is on; dev prints a local admin key, and it works.
      const key = (/LORAFUSE_API_KEY=(lfk_\S+)/.exec(output) as RegExpExecArray | null)?.[1];
      assert.ok(key, `dev prints a local key:\n${output}`);
      assert.equal((await fetch(`${apiUrl}/v1/models`)).status, 401);
      const listed = await fetch(`${apiUrl}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(listed.status, 200, await listed.text());
      assert.ok(await accepts(redisPort));
      assert.ok(existsSync(path.join(data.dir, 'redis')));

      child.kill('SIGTERM');
      assert.equal((await dev.exited).code, 0, dev.output());
      assert.match(dev.output(), /stopping \(worker, API, Redis\)/);
      assert.equal(await accepts(redisPort), false, 'the private redis-server is gone');
      const redisFiles = readdirSync(path.join(data.dir, 'redis'));
      assert.ok(
        redisFiles.some((name) => name.startsWith('appendonly') || name === 'appendonlydir'),
        `AOF on: ${redisFiles.join(', ')}`,
      );
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      data.remove();
    }
  });
});
