import type { HostTensor } from '../io/host-tensors.ts';
import type { FinetuneMode } from '../train/trainable.ts';

/** What the main thread asks a runtime worker. */
export type WorkerRequest =
  | {
      type: 'init';
      backend?: string;
      modelDir: string;
      extraWeights?: string[];
      /** Training: the trainable state to mirror (same seed, so the same A₀). */
      state?: {
        mode: FinetuneMode;
        targets: string[];
        rank: number;
        scale: number;
        seed: number;
        trainHead: boolean;
      };
      /** Evaluation: an adapter to apply. */
      adapterDir?: string;
    }
  | {
      type: 'grads';
      /** Current value of every trainable variable. */
      values: Record<string, Float32Array>;
      inputs: Record<string, HostTensor>;
      labels: Int32Array;
    }
  | { type: 'evaluate'; inputs: Record<string, HostTensor>; labels: Int32Array }
  /** The job is over: release the model and its tensors, and wait warm for the next init (no reply). */
  | { type: 'reset' };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'grads'; loss: number; grads: Record<string, Float32Array> }
  | { type: 'evaluated'; lossSum: number; predictions: Int32Array }
  /** `name` lets the pool rethrow a ModelInputError as one (input errors are not retried). */
  | { type: 'error'; message: string; name?: string };
