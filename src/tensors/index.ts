// Public API of the safetensors layer: validated streamed reading, streamed writing, dtypes and
// conversions, and Hugging Face checkpoints (single file or sharded).

export { Checkpoint } from './checkpoint.ts';
export {
  assignShards,
  CheckpointWriter,
  DEFAULT_MAX_SHARD_BYTES,
  type Shard,
  shardIndexText,
} from './checkpoint-writer.ts';
export {
  arrayTypeOf,
  DTYPE_BYTES,
  DTYPES,
  type DType,
  isDType,
  numelOf,
  type Tensor,
  type TensorInfo,
  type TensorSpec,
  type TypedArray,
} from './dtypes.ts';
export { SafetensorsError, type SafetensorsErrorCode } from './errors.ts';
export { SafetensorsFile } from './file-reader.ts';
export { SafetensorsWriter, writeSafetensors } from './file-writer.ts';
export {
  bf16ToFloat32,
  decodeToFloat32,
  encodeFromFloat32,
  f16ToFloat32,
  float32ToBF16,
  float32ToF16,
} from './float-conversion.ts';
export {
  checkJsonLimits,
  DEFAULT_JSON_LIMITS,
  JsonLimitError,
  type JsonLimits,
  jsonNestingDepth,
  MAX_JSON_BYTES,
  MAX_JSON_DEPTH,
  parseBoundedJson,
  valueNestingDepth,
} from './bounded-json.ts';
export { MAX_HEADER_BYTES } from './header.ts';
export { moduleSpellings, VIT_MODULE_RENAMES } from './module-renames.ts';
export { type FileRef, openFileRange, type RangeSource, readWhole, refName } from './range-source.ts';
export { seededUniform } from './seeded-uniform.ts';
