// Redis connections with the two retry policies BullMQ asks for: the API answers quickly with an
// error when Redis is down, while workers wait for it forever (their blocking calls need that).
// The same URL reaches a single server, a Sentinel-managed master or a Cluster: REDIS_URL carries
// credentials, database and TLS (rediss://); the deployment (src/config.ts) says how to find hosts.
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { RedisDeployment } from '../config.ts';

/** Called on connection errors (ioredis reconnects by itself); without it they are ignored. */
export type RedisErrorListener = (error: Error) => void;

const STANDALONE: RedisDeployment = { mode: 'standalone' };

/** What `new Redis(...)` or `new Cluster(...)` is given for a URL, a deployment and a retry policy. */
export type RedisConnectionPlan =
  | { kind: 'redis'; url: string; options: RedisOptions }
  | { kind: 'redis'; options: RedisOptions }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; options: ClusterOptions };

/** Credentials, database and TLS as the URL gives them (shared by Sentinel and Cluster modes). */
function urlSettings(url: string): RedisOptions {
  const parsed = new URL(url);
  const settings: RedisOptions = {};
  if (parsed.username) settings.username = decodeURIComponent(parsed.username);
  if (parsed.password) settings.password = decodeURIComponent(parsed.password);
  const db = parsed.pathname.replace('/', '');
  if (db !== '') settings.db = Number(db);
  if (parsed.protocol === 'rediss:') settings.tls = {};
  return settings;
}

/** Pure: how to connect (unit-tested without a server). */
export function redisConnectionPlan(
  url: string,
  deployment: RedisDeployment,
  policy: RedisOptions,
): RedisConnectionPlan {
  if (deployment.mode === 'standalone') return { kind: 'redis', url, options: policy };
  const settings = urlSettings(url);
  if (deployment.mode === 'sentinel') {
    return {
      kind: 'redis',
      options: {
        ...settings,
        ...policy,
        sentinels: deployment.sentinels,
        name: deployment.name,
        sentinelPassword: deployment.sentinelPassword,
        enableTLSForSentinelMode: deployment.sentinelTls,
      },
    };
  }
  const { db: _db, ...redisOptions } = settings;
  return {
    kind: 'cluster',
    nodes: deployment.nodes,
    options: {
      redisOptions: { ...redisOptions, ...policy },
      // BullMQ: a blocked connection must not give up on a MOVED/ASK redirection.
      maxRedirections: 16,
      // Managed clusters (e.g. ElastiCache) serve TLS certificates for their configuration host names,
      // not for the node IPs a lookup would give: keep the names.
      ...(redisOptions.tls
        ? { dnsLookup: (address: string, callback: (e: null, a: string) => void) => callback(null, address) }
        : {}),
    },
  };
}

function connect(url: string, deployment: RedisDeployment, policy: RedisOptions): Redis {
  const plan = redisConnectionPlan(url, deployment, policy);
  if (plan.kind === 'cluster') {
    // A Cluster answers the same commands; BullMQ accepts either.
    return new Cluster(plan.nodes, plan.options) as unknown as Redis;
  }
  return 'url' in plan ? new Redis(plan.url, plan.options) : new Redis(plan.options);
}

function listen(redis: Redis, onError: RedisErrorListener | undefined): Redis {
  // An 'error' event without a listener is printed by ioredis on every reconnect attempt.
  redis.on('error', (error: Error) => onError?.(error));
  return redis;
}

/**
 * For the API and the CLI: a command fails after one retry instead of hanging the request. Auto-pipelining sends
 * every command issued in one event-loop turn (by all requests in flight) as one write: under load the API
 * otherwise spends most of its time in one socket write per command. Blocking readers must not share it
 * (JobEventHub duplicates it for its XREAD, without pipelining).
 */
export function createApiRedis(
  url: string,
  onError?: RedisErrorListener,
  deployment: RedisDeployment = STANDALONE,
  { autoPipelining = true }: { autoPipelining?: boolean } = {},
): Redis {
  return listen(
    connect(url, deployment, {
      maxRetriesPerRequest: 1,
      connectTimeout: 5000,
      enableAutoPipelining: autoPipelining,
    }),
    onError,
  );
}

/** For workers and processors: BullMQ requires `maxRetriesPerRequest: null` on blocking connections. */
export function createWorkerRedis(
  url: string,
  onError?: RedisErrorListener,
  deployment: RedisDeployment = STANDALONE,
): Redis {
  return listen(connect(url, deployment, { maxRetriesPerRequest: null, enableReadyCheck: false }), onError);
}
