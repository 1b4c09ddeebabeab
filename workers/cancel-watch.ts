// A user's cancel reaches a running job as a Redis flag (JobService.cancel); this turns the flag,
// and BullMQ's own abort, into one AbortSignal the job's code can pass down.
import type { Redis } from 'ioredis';
import { CANCELLED_REASON, jobKeys } from '../src/queue/index.ts';

export interface CancelWatch {
  signal: AbortSignal;
  /** Asks Redis now (the poll may not have run yet). */
  userCancelled(): Promise<boolean>;
  /** True when the signal fired because of the user's cancel (not a shutdown). */
  cancelledByUser(): Promise<boolean>;
  stop(): void;
}

export function watchCancel(
  redis: Redis,
  prefix: string,
  /** The job, or the job and the jobs it works for (a shard job stops when its parent is cancelled too). */
  jobId: string | string[],
  upstream?: AbortSignal,
  pollMs = 250,
): CancelWatch {
  const keys = (Array.isArray(jobId) ? jobId : [jobId]).map((id) => jobKeys(prefix).cancel(id));
  const controller = new AbortController();
  const userCancelled = async () => (await redis.exists(...keys)) > 0;
  const poll = setInterval(() => {
    userCancelled()
      .then((yes) => yes && controller.abort(CANCELLED_REASON))
      .catch(() => undefined);
  }, pollMs);
  const forward = () => controller.abort(upstream?.reason ?? 'aborted');
  upstream?.addEventListener('abort', forward, { once: true });
  return {
    signal: controller.signal,
    userCancelled,
    async cancelledByUser() {
      return controller.signal.reason === CANCELLED_REASON || (await userCancelled().catch(() => false));
    },
    stop() {
      clearInterval(poll);
      upstream?.removeEventListener('abort', forward);
    },
  };
}
