// Redis connections with the two retry policies BullMQ asks for: the API answers quickly with an
// error when Redis is down, while workers wait for it forever (their blocking calls need that).
import { Redis } from 'ioredis';

/** For the API and the CLI: a command fails after one retry instead of hanging the request. */
export function createApiRedis(url: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    enableOfflineQueue: true,
    lazyConnect: false,
  });
}

/** For workers and processors: BullMQ requires `maxRetriesPerRequest: null` on blocking connections. */
export function createWorkerRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: false });
}
