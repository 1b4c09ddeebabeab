// `lorafuse keys create|list|revoke` as its own process against a real redis-server: the key is printed
// once and works, listings never carry it, a revoked key stops working, mistakes exit 2 (1 for an unknown id).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { AccessStore } from '../../src/store/index.ts';
import { startTestRedis, type TestRedis, uniquePrefix } from '../helpers/redis.ts';
import { type CliResult, runCli } from '../helpers/run-cli.ts';

describe('lorafuse keys', () => {
  let server: TestRedis;
  let redis: Redis;
  let prefix: string;
  let access: AccessStore;

  before(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
    prefix = uniquePrefix('keys');
    access = new AccessStore(redis, prefix);
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
  });

  function keys(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return runCli(['keys', ...args], {
      env: { REDIS_URL: server.url, LORAFUSE_QUEUE_PREFIX: prefix, ...env },
    });
  }

  it('creates a key (printed once), lists it without the key, and revokes it', async () => {
    const made = await keys(['create', '--project', 'team-x', '--scopes', 'read,admin', '--name', 'ci bot']);
    assert.equal(made.code, 0, made.stderr);
    const token = made.stdout.trim();
    assert.match(token, /^lfk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const record = await access.authenticate(token);
    assert.deepEqual(
      { project: record?.project, scopes: record?.scopes, name: record?.name },
      { project: 'team-x', scopes: ['read', 'admin'], name: 'ci bot' },
    );
    assert.match(made.stderr, new RegExp(`made key ${record?.id} for project team-x`));
    assert.ok(!made.stderr.includes(token), 'the key goes to stdout only');
    assert.ok(await access.project('team-x'), 'the project was made with it');

    const other = await keys(['create', '--project', 'team-y']);
    assert.equal(other.code, 0, other.stderr);
    const listed = await keys(['list', '--project', 'team-x']);
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.deepEqual(
      lines.map((line) => line.id),
      [record?.id],
    );
    assert.ok(!listed.stdout.includes(token.split('_')[2]), 'a listing never carries a key');
    const all = await keys(['list']);
    assert.equal(all.stdout.trim().split('\n').length, 2);

    const revoked = await keys(['revoke', record?.id as string]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(await access.authenticate(token), null);
    const again = await keys(['revoke', record?.id as string]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no key with id/);
  });

  it('refuses bad scopes, a bad project name, a missing REDIS_URL and an unknown subcommand (exit 2)', async () => {
    const before = await access.listKeys();
    const scopes = await keys(['create', '--scopes', 'read,root']);
    assert.equal(scopes.code, 2);
    assert.match(scopes.stderr, /scopes must be a list of read, write, admin/);
    const project = await keys(['create', '--project', 'Team X']);
    assert.equal(project.code, 2);
    assert.match(project.stderr, /project "Team X" must be/);
    const noRedis = await keys(['list'], { REDIS_URL: '' });
    assert.equal(noRedis.code, 2);
    assert.match(noRedis.stderr, /needs REDIS_URL/);
    const typo = await keys(['craete']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /did you mean "create"/);
    assert.deepEqual(await access.listKeys(), before, 'nothing was made');
  });
});
