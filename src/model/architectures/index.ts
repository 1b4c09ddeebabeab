// The architecture registry: config.json's model_type to the family that runs it.
import { ModelInputError } from '../errors.ts';
import type { Architecture } from './architecture.ts';
import { bertArchitecture } from './bert.ts';
import { clipVisionArchitecture } from './clip-vision.ts';
import { mlpArchitecture } from './mlp.ts';
import { vitArchitecture } from './vit.ts';

export type { Architecture, ModelConfig, ModelInputs, ModelOutputs } from './architecture.ts';

/** Every architecture the runtime runs, keyed by config.json's model_type. */
export const ARCHITECTURES: readonly Architecture[] = [
  mlpArchitecture,
  vitArchitecture,
  bertArchitecture,
  clipVisionArchitecture,
];

export function architectureFor(modelType: string): Architecture {
  const found = ARCHITECTURES.find((a) => a.modelType === modelType);
  if (!found) {
    throw new ModelInputError(
      `model_type ${modelType} is not supported (${ARCHITECTURES.map((a) => a.modelType).join(', ')})`,
    );
  }
  return found;
}
