// One error class for everything the safetensors reader and writer reject; `code` is stable,
// the message names the file and (when there is one) the tensor.

export type SafetensorsErrorCode =
  // reading one file, in the order the checks run
  | 'file_too_small' // shorter than the 8-byte header length
  | 'header_too_large' // header length (u64) over MAX_HEADER_BYTES
  | 'header_out_of_bounds' // header length goes past the end of the file
  | 'header_not_utf8'
  | 'header_invalid_json' // includes nesting deeper than any header needs
  | 'header_not_object'
  | 'header_duplicate_key' // a tensor named twice
  | 'tensor_duplicate_field'
  | 'metadata_invalid' // __metadata__ not a string -> string map (or a key twice)
  | 'tensor_entry_invalid'
  | 'tensor_unknown_field'
  | 'tensor_missing_field'
  | 'tensor_unknown_dtype'
  | 'tensor_invalid_shape' // not safe non-negative integers, or numel x size not a safe integer
  | 'tensor_invalid_offsets'
  | 'tensor_size_mismatch' // end - start != numel x dtype size
  | 'tensor_offsets_overlap'
  | 'tensor_offsets_gap'
  | 'tensor_out_of_bounds'
  | 'trailing_bytes'
  | 'file_truncated' // the file got shorter after it was opened
  | 'file_closed'
  | 'target_size_mismatch' // readFloat32Into given an array of the wrong length
  | 'tensor_not_found'
  // checkpoints (index + shards)
  | 'checkpoint_not_found'
  | 'index_invalid'
  | 'index_missing_shard'
  | 'index_mismatch'
  | 'checkpoint_duplicate_tensor'
  // writing
  | 'invalid_spec'
  | 'writer_order'
  | 'writer_dtype_mismatch'
  | 'writer_size_mismatch'
  | 'writer_incomplete'
  | 'writer_closed';

export class SafetensorsError extends Error {
  readonly code: SafetensorsErrorCode;
  readonly file: string;
  readonly tensor?: string;

  constructor(code: SafetensorsErrorCode, file: string, detail: string, tensor?: string) {
    const where = tensor === undefined ? file : `${file}, tensor '${tensor}'`;
    super(`${where}: ${detail}`);
    this.name = 'SafetensorsError';
    this.code = code;
    this.file = file;
    if (tensor !== undefined) this.tensor = tensor;
  }
}
