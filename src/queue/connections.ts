// Redis connections with the two retry policies BullMQ asks for: the API answers quickly with an
// error when Redis is down, while workers wait for it forever (their blocking calls need that).
import { Redis } from 'ioredis';

/** Called on connection errors (ioredis reconnects by itself); without it they are ignored. */
export type RedisErrorListener = (error: Error) => void;

function listen(redis: Redis, onError: RedisErrorListener | undefined): Redis {
  // An 'error' event without a listener is printed by ioredis on every reconnect attempt.
  redis.on('error', (error: Error) => onError?.(error));
  return redis;
}

/** For the API and the CLI: a command fails after one retry instead of hanging the request. */
export function createApiRedis(url: string, onError?: RedisErrorListener): Redis {
  return listen(new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 5000 }), onError);
}

/** For workers and processors: BullMQ requires `maxRetriesPerRequest: null` on blocking connections. */
export function createWorkerRedis(url: string, onError?: RedisErrorListener): Redis {
  return listen(new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: false }), onError);
}
