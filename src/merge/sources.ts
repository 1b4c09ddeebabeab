// How the planner reaches its inputs. The CLI maps recipe paths to folders/files, the worker maps
// artifact ids to stored blobs; the planner only sees these interfaces.
import type { Checkpoint, Tensor, TensorInfo } from '../tensors/index.ts';

export interface ModelSource {
  checkpoint: Checkpoint;
  /** config.json, when the model has one (layer count, copied to the output). */
  config?: Record<string, unknown>;
}

export interface AdapterSource {
  /** adapter_config.json as parsed JSON. */
  config: Record<string, unknown>;
  weights: Checkpoint;
  /** lorafuse_init.safetensors: the expansion point (A₀, B₀) the adapter was trained around. */
  init?: Checkpoint;
  /** lorafuse.json: lorafuse's own extras (mode, seed, lineage). */
  extras?: Record<string, unknown>;
}

export interface InputResolver {
  openModel(ref: string): Promise<ModelSource>;
  openAdapter(ref: string): Promise<AdapterSource>;
}

/** What the executor reads tensors from: a Checkpoint, or a stand-in such as the zero expansion point. */
export interface TensorSource {
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  read(name: string): Promise<Tensor>;
  readFloat32(name: string): Promise<Float32Array>;
  /**
   * Raw bytes into a buffer of exactly the tensor's byte length (the merge's pooled working set), or,
   * with `byteOffset`, the target's length of them from there (one piece of a large tensor).
   */
  readBytesInto?(name: string, target: Uint8Array, byteOffset?: number): Promise<Uint8Array>;
}

/** One input's tensor for one output tensor: a named tensor of a source, or zeros (source null). */
export interface TensorRead {
  source: TensorSource | null;
  name: string;
}
