// How lorafuse's kernels reach tfjs-backend-wasm's heap: a tensor's bytes by its data id, outputs made by the
// backend (so tfjs owns and frees them), and scratch blocks from the backend's own allocator.
import type * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-backend-wasm's BackendWasm the kernels use. */
export interface WasmBackend {
  wasm: { asm?: { memory?: object }; _malloc(bytes: number): number; _free(pointer: number): void };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** Whether a tfjs backend is tfjs-backend-wasm's (its heap, data map and output maker are there). */
function isWasmBackend(backend: unknown): backend is WasmBackend {
  if (typeof backend !== 'object' || backend === null) return false;
  return (
    'wasm' in backend && 'dataIdMap' in backend && typeof Reflect.get(backend, 'makeOutput') === 'function'
  );
}

/** The backend a wasm kernel runs on, checked: a kernel registered for wasm that gets another is a bug. */
export function wasmBackend(backend: unknown): WasmBackend {
  if (!isWasmBackend(backend)) throw new Error('lorafuse SIMD kernels run on the wasm backend only');
  return backend;
}

/** The byte offset of a tensor's data in the backend's heap. */
export function offset(backend: WasmBackend, tensor: tf.TensorInfo): number {
  return backend.dataIdMap.get(tensor.dataId).memoryOffset;
}

export function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Runs `body` with a scratch block of `bytes` from the backend's allocator, freed after. */
export function withScratch<T>(backend: WasmBackend, bytes: number, body: (pointer: number) => T): T {
  const pointer = backend.wasm._malloc(bytes);
  try {
    return body(pointer);
  } finally {
    backend.wasm._free(pointer);
  }
}
