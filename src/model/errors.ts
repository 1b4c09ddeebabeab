// The model runtime's typed input error: a model, adapter or dataset it cannot use (an unknown
// architecture, a target module that matches nothing, a missing input tensor). Deterministic, so jobs
// fail at once as `invalid_input`; any other error the runtime throws is a bug or a fault (`internal`).
export class ModelInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelInputError';
  }
}
