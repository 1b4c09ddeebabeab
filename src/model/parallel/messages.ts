// The messages between the main thread and a runtime worker thread (init, gradients, evaluation, reset).
import type { HostTensor } from '../io/host-tensors.ts';
import type { HeadWeights } from '../train/task-head.ts';
import type { TrainableSpec } from '../train/trainable.ts';

/** What the main thread asks a runtime worker. */
export type WorkerRequest =
  | {
      type: 'init';
      backend?: string;
      /** Whether the thread installs lorafuse's SIMD kernels (the main thread's setting); default on. */
      simdKernels?: boolean;
      /** The library search path the main thread chose its backend with (backendLibrarySearchPath). */
      librarySearchPath?: string;
      modelDir: string;
      extraWeights?: string[];
      /** Training: the trainable state to mirror (same seed, so the same A₀). */
      state?: TrainableSpec;
      /** Training: the task head installed in place of the classifier, as on the main thread. */
      head?: HeadWeights;
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
