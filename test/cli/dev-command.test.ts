import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../helpers/redis.ts';
import { acceptsConnections as accepts } from '../helpers/net.ts';
import { HANG_GUARD_MS } from '../helpers/wait.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/lorafuse.js');

describe('lorafuse dev', () => {
  it('starts a private redis-server (AOF) + API + worker, answers, and stops everything on SIGTERM', async () => {
    const data = tempDir('lorafuse-dev');
    const child = spawn(process.execPath, [BIN, 'dev'], {
      env: { ...process.env, REDIS_URL: '', PORT: '0', LORAFUSE_DATA_DIR: data.dir, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + HANG_GUARD_MS;
      // Started once the local key is printed (the line after "API on").
      while (!/API on http:\/\/127\.0\.0\.1:\d+[\s\S]*LORAFUSE_API_KEY=lfk_\S+\n/.test(output)) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`dev did not start:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
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
      assert.equal(await exited, 0, output);
      assert.match(output, /stopping \(worker, API, Redis\)/);
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
