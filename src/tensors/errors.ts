// One error class for everything the safetensors reader and writer reject; `code` is stable,
// the message names the file and (when there is one) the tensor.

export class SafetensorsError extends Error {
  readonly code: string;
  readonly file: string;
  readonly tensor?: string;

  constructor(code: string, file: string, detail: string, tensor?: string) {
    const where = tensor === undefined ? file : `${file}, tensor '${tensor}'`;
    super(`${where}: ${detail}`);
    this.name = 'SafetensorsError';
    this.code = code;
    this.file = file;
    if (tensor !== undefined) this.tensor = tensor;
  }
}
