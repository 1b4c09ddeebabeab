// The queue layer's public face: the contract, the job service and the connection helpers.
export * from './contract.ts';
export {
  createApiRedis,
  createWorkerRedis,
  type RedisConnectionPlan,
  redisConnectionPlan,
} from './connections.ts';
export {
  hashBody,
  IdempotencyKeyReuseError,
  InvalidCursorError,
  JobNotCancellableError,
  JobNotFoundError,
  JobService,
  type SubmitOptions,
} from './job-service.ts';
export { FLAG_TTL_SECONDS, jobKeys } from './keys.ts';
export { discardPublications } from './publications.ts';
export {
  deliveryIdOf,
  type JobMetricsSnapshot,
  type JobOutcome,
  type JobOutcomeExtras,
  JobOutcomes,
  readJobMetrics,
  type WebhookRetry,
} from './job-outcomes.ts';
export { mapState, toJobView } from './job-view.ts';
export { type BullState, type JobSnapshot, readJobSnapshot } from './job-snapshot.ts';
export {
  clearSearchProgress,
  markSearchStarted,
  readSearchProgress,
  recordSearchPoint,
  type SearchPointSummary,
  searchParentOf,
  searchProgressKey,
} from './search-progress.ts';
export { compareStreamIds, isStreamId, JobEventHub, type JobStreamEvent } from './job-events.ts';
