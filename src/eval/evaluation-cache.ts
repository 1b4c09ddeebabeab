// Evaluations cached by (artifact, head, dataset) ids in Redis. Artifacts are immutable, so one evaluation of a
// stored artifact through one head over one dataset never changes: re-running merges over the same inputs
// reuses every reference and base evaluation instead of running it again.

/** The subset of ioredis this cache uses (so src/eval stays free of the client). */
export interface CacheRedis {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<unknown>;
}

export interface CachedEvaluation {
  examples: number;
  accuracy: number;
  loss: number;
  /** Argmax per example, in dataset order. */
  predictions: number[];
}

/** The stable key of one evaluation (also ReportEvaluation.key). */
export function evaluationKey(artifact: string, head: string, dataset: string): string {
  return `${artifact}|${head}|${dataset}`;
}

export class EvaluationCache {
  hits = 0;
  misses = 0;

  constructor(
    private readonly redis: CacheRedis,
    private readonly prefix: string,
  ) {}

  private redisKey(key: string): string {
    return `${this.prefix}:evaluations:${key}`;
  }

  async get(key: string): Promise<CachedEvaluation | null> {
    const json = await this.redis.get(this.redisKey(key));
    if (json === null) {
      this.misses += 1;
      return null;
    }
    this.hits += 1;
    return JSON.parse(json) as CachedEvaluation;
  }

  async set(key: string, value: CachedEvaluation): Promise<void> {
    await this.redis.set(this.redisKey(key), JSON.stringify(value));
  }

  /** The cached evaluation, or `run()`'s, stored for next time. */
  async through(key: string, run: () => Promise<CachedEvaluation>): Promise<CachedEvaluation> {
    const cached = await this.get(key);
    if (cached) return cached;
    const fresh = await run();
    await this.set(key, fresh);
    return fresh;
  }
}
