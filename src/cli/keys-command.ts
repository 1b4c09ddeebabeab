// `lorafuse keys create|list|revoke`: API keys managed straight in the deployment's Redis (REDIS_URL,
// LORAFUSE_QUEUE_PREFIX), for operators and first setup. A project's admins can do the same over HTTP
// (/v1/keys). The key itself is printed once, by `create`, and is stored nowhere (only its sha256 is).
import type { Redis } from 'ioredis';
import { loadConfig } from '../config.ts';
import { createApiRedis } from '../queue/index.ts';
import { AccessError, AccessStore, DEFAULT_PROJECT, parseScopes } from '../store/index.ts';
import { type CommandOutput, type CommandSpec, nearest, prepareCommand, processOutput } from './args.ts';

const ENVIRONMENT =
  'Needs REDIS_URL (and LORAFUSE_QUEUE_PREFIX when the deployment sets one): the Redis the API uses.';

export const KEYS_SPECS: Record<'create' | 'list' | 'revoke', CommandSpec> = {
  create: {
    command: 'keys create',
    summary:
      'Makes an API key and prints it once (stdout; the id and scopes go to stderr). Only its sha256 is stored:\na lost key cannot be shown again, only revoked and replaced.',
    options: {
      project: {
        type: 'string',
        value: 'NAME',
        description: 'the project the key sees (made with its webhook secret if new); a-z, 0-9, _ and -',
        default: DEFAULT_PROJECT,
      },
      scopes: {
        type: 'string',
        value: 'LIST',
        description:
          'comma-separated: read (GET routes), write (uploads, jobs, deletes), admin (keys, project)',
        default: 'read,write',
      },
      name: { type: 'string', value: 'TEXT', description: 'a note of who or what uses it' },
    },
    notes: ENVIRONMENT,
  },
  list: {
    command: 'keys list',
    summary: 'Lists keys (id, project, scopes, name, created) as JSON lines; never the keys themselves.',
    options: {
      project: { type: 'string', value: 'NAME', description: 'only this project’s keys', default: 'all' },
    },
    notes: ENVIRONMENT,
  },
  revoke: {
    command: 'keys revoke',
    summary: 'Revokes a key at once: the next request with it is a 401.',
    positionals: [{ name: 'ID', description: 'the key id (the 12 hex characters after lfk_)' }],
    options: {},
    notes: ENVIRONMENT,
  },
};

const USAGE = `usage: lorafuse keys <create|list|revoke> [options]   (lorafuse keys <subcommand> --help)

  create   make a key for a project with scopes, printed once
  list     the keys (ids, projects, scopes), never the keys themselves
  revoke   revoke a key by its id
`;

type Subcommand = keyof typeof KEYS_SPECS;

export async function runKeys(argv: string[], io: CommandOutput = processOutput): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    io.stdout(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (!(name in KEYS_SPECS)) {
    const guess = nearest(name, Object.keys(KEYS_SPECS));
    io.stderr(
      `lorafuse keys: unknown subcommand "${name}"${guess ? `; did you mean "${guess}"?` : ''}\n\n${USAGE}`,
    );
    return 2;
  }
  const subcommand = name as Subcommand;
  const parsed = prepareCommand(KEYS_SPECS[subcommand], rest, io);
  if (typeof parsed === 'number') return parsed;
  const config = loadConfig();
  if (!config.redisUrl) {
    io.stderr('lorafuse keys needs REDIS_URL: the Redis of the deployment (`lorafuse dev` prints its own)\n');
    return 2;
  }
  const redis: Redis = createApiRedis(config.redisUrl, undefined, config.redis);
  const access = new AccessStore(redis, config.queuePrefix);
  try {
    if (subcommand === 'create') {
      const { token, key } = await access.createKey({
        project: (parsed.values.project as string | undefined) ?? DEFAULT_PROJECT,
        scopes: parseScopes((parsed.values.scopes as string | undefined) ?? 'read,write'),
        name: parsed.values.name as string | undefined,
      });
      io.stderr(
        `lorafuse keys: made key ${key.id} for project ${key.project} (${key.scopes.join(',')}); it is shown only now\n`,
      );
      io.stdout(`${token}\n`);
    } else if (subcommand === 'list') {
      const project = parsed.values.project as string | undefined;
      for (const key of await access.listKeys(project)) io.stdout(`${JSON.stringify(key)}\n`);
    } else {
      const key = await access.revokeKey(parsed.positionals[0]);
      io.stderr(`lorafuse keys: revoked ${key.id} (project ${key.project})\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof AccessError) {
      io.stderr(`lorafuse keys ${subcommand}: ${error.message}\n`);
      return error.code === 'key-not-found' ? 1 : 2;
    }
    throw error;
  } finally {
    redis.disconnect();
  }
}
