// A merge request is checked completely before it is queued: the recipe's structure (RecipeError),
// that every artifact id exists with the right kind, and the plan itself (method, parameters,
// shapes: MergePlanError), which reads only safetensors headers.
import {
  closePlan,
  parseRecipe,
  planMerge,
  type RecipeLimits,
  recipeReferences,
} from '../../../merge/index.ts';
import { ArtifactInputs, type ArtifactStore } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';

export interface ValidatedMerge {
  /** Every artifact id the recipe reads, base included. */
  inputs: string[];
}

export async function validateMerge(
  store: ArtifactStore,
  body: Record<string, unknown>,
  limits: Partial<RecipeLimits> = {},
): Promise<ValidatedMerge> {
  const recipe = parseRecipe(body, limits);
  const references = recipeReferences(recipe);
  const unknown: string[] = [];
  for (const [kind, ids] of [
    ['model', references.models],
    ['adapter', references.adapters],
  ] as const) {
    for (const id of ids) {
      const record = await store.get(id);
      if (!record || record.kind !== kind) unknown.push(id);
    }
  }
  if (unknown.length > 0) {
    throw new ApiProblem(
      'unknown-artifact',
      `not stored artifacts of the kind the recipe needs: ${unknown.join(', ')}`,
      {
        artifacts: unknown,
      },
    );
  }
  const resolver = new ArtifactInputs(store);
  let plan: Awaited<ReturnType<typeof planMerge>>;
  try {
    plan = await planMerge(recipe, resolver);
  } catch (error) {
    await resolver.closeAll();
    throw error;
  }
  await closePlan(plan);
  return { inputs: [...references.models, ...references.adapters] };
}
