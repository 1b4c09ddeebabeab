// The merge engine's coded errors: callers map `code` to problem types (API) or exit messages (CLI).

/** A recipe that is structurally wrong; `path` points at the offending field, e.g. `models[1].parameters.weight`. */
export class RecipeError extends Error {
  readonly code: string;
  readonly path: string;
  constructor(code: string, path: string, message: string) {
    super(path ? `${path}: ${message}` : message);
    this.name = 'RecipeError';
    this.code = code;
    this.path = path;
  }
}

/**
 * A recipe that does not fit the registry or its inputs; names the tensor, the shapes, the parameter,
 * the model whose value it is and the recipe path of that value, where known.
 */
export class MergePlanError extends Error {
  readonly code: string;
  readonly tensor?: string;
  readonly parameter?: string;
  readonly model?: string;
  readonly path?: string;
  constructor(
    code: string,
    message: string,
    details: { tensor?: string; parameter?: string; model?: string; path?: string } = {},
  ) {
    super(message);
    this.name = 'MergePlanError';
    this.code = code;
    this.tensor = details.tensor;
    this.parameter = details.parameter;
    this.model = details.model;
    this.path = details.path;
  }
}

/** Thrown by executeMerge when its signal aborts; nothing it wrote is left behind. */
export class MergeCancelledError extends Error {
  constructor(message = 'merge cancelled') {
    super(message);
    this.name = 'MergeCancelledError';
  }
}

/** A PEFT adapter folder lorafuse cannot use; `module` names the LoRA module when one is at fault. */
export class AdapterError extends Error {
  readonly code: string;
  readonly module?: string;
  constructor(code: string, message: string, module?: string) {
    super(message);
    this.name = 'AdapterError';
    this.code = code;
    this.module = module;
  }
}
