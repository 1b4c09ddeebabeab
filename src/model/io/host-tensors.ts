// Tensors on the host for the runtime: safetensors files and checkpoint folders read and written through
// src/tensors.
import { Checkpoint, SafetensorsFile, writeSafetensors } from '../../tensors/index.ts';

/** A tensor held on the host: float data as F32 (any float dtype converted), integer data as I64. */
export interface HostTensor {
  dtype: 'F32' | 'I64';
  shape: number[];
  data: Float32Array | BigInt64Array;
}

export interface SafetensorsContents {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

const INTEGER_DTYPES = new Set(['I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'BOOL']);

/** Reads every tensor of one (small: inputs, datasets, adapters) safetensors file through src/tensors. */
export async function readSafetensors(filePath: string): Promise<SafetensorsContents> {
  const file = await SafetensorsFile.open(filePath);
  try {
    const tensors = new Map<string, HostTensor>();
    for (const name of file.names()) tensors.set(name, await readHost(file, name));
    return { tensors, metadata: { ...file.metadata } };
  } finally {
    await file.close();
  }
}

/** Reads a model checkpoint folder (single file or shards) through src/tensors. */
export async function readCheckpoint(dir: string, stem = 'model'): Promise<Map<string, HostTensor>> {
  const checkpoint = await Checkpoint.openFolder(dir, stem);
  try {
    const tensors = new Map<string, HostTensor>();
    for (const name of checkpoint.names()) tensors.set(name, await readHost(checkpoint, name));
    return tensors;
  } finally {
    await checkpoint.close();
  }
}

async function readHost(source: SafetensorsFile | Checkpoint, name: string): Promise<HostTensor> {
  const info = source.info(name);
  if (!INTEGER_DTYPES.has(info.dtype)) {
    return { dtype: 'F32', shape: info.shape, data: await source.readFloat32(name) };
  }
  const tensor = await source.read(name);
  const data =
    tensor.data instanceof BigInt64Array
      ? tensor.data
      : BigInt64Array.from(tensor.data as ArrayLike<number>, (v) => BigInt(v));
  return { dtype: 'I64', shape: info.shape, data };
}

/** Writes tensors in the given order through src/tensors (nothing left behind on failure). */
export async function writeSafetensorsFile(
  filePath: string,
  tensors: Array<[string, HostTensor]>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeSafetensors(
    filePath,
    tensors.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data })),
    metadata,
  );
}
