// Store errors carry a stable code (the API maps each to a problem type) and what they concern.

export interface ArtifactErrorDetails {
  file?: string;
  tensor?: string;
  module?: string;
  /** A metadata field (datasets: split, task, class_names). */
  field?: string;
}

/** The uploaded or ingested files do not form a valid artifact. */
export class ArtifactValidationError extends Error {
  readonly file?: string;
  readonly tensor?: string;
  readonly module?: string;
  readonly field?: string;
  constructor(
    readonly code: string,
    message: string,
    details: ArtifactErrorDetails = {},
  ) {
    super(message);
    this.name = 'ArtifactValidationError';
    this.file = details.file;
    this.tensor = details.tensor;
    this.module = details.module;
    this.field = details.field;
  }
}

/** A single file of an upload went past its size limit. */
export class UploadTooLargeError extends Error {
  constructor(
    readonly file: string,
    readonly limit: number,
  ) {
    super(`${file} is larger than the ${limit}-byte limit`);
    this.name = 'UploadTooLargeError';
  }
}
