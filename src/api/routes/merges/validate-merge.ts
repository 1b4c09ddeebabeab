// A merge request is checked completely before it is queued: the recipe's structure (RecipeError),
// that every artifact id exists with the right kind, and the plan itself (method, parameters,
// shapes: MergePlanError), which reads only safetensors headers.
import {
  closePlan,
  getMethod,
  MergePlanError,
  needsTaskData,
  parseRecipe,
  planDataDrivenMerge,
  planMerge,
  type RecipeLimits,
  recipeReferences,
} from '../../../merge/index.ts';
import type { MergeEvaluation } from '../../../queue/index.ts';
import { ArtifactInputs, type ArtifactStore, type HeaderCache } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';

export interface ValidatedMerge {
  /** Every artifact id the job reads: the recipe's (base included) and the evaluation's datasets. */
  inputs: string[];
}

/** `headers`: the app's cache of safetensors headers (the plan reads nothing else of the inputs). */
export async function validateMerge(
  store: ArtifactStore,
  body: Record<string, unknown>,
  evaluation?: MergeEvaluation,
  limits: Partial<RecipeLimits> = {},
  headers?: HeaderCache,
): Promise<ValidatedMerge> {
  const recipe = parseRecipe(body, limits);
  // A data-driven method without its tasks is refused before anything is opened.
  const dataDriven = getMethod(recipe.merge_method)?.kind === 'data-driven';
  if (dataDriven && !evaluation) throw needsTaskData(recipe.merge_method);
  const references = recipeReferences(recipe);
  // Only the datasets here: heads and references are checked where the evaluation is resolved.
  const datasets = [...new Set(evaluation?.tasks.flatMap((t) => [t.validation, t.test]) ?? [])];
  // Every record asked for at once (one round trip on an auto-pipelined connection), reported in recipe order.
  const wanted = (
    [
      ['model', references.models],
      ['adapter', references.adapters],
      ['dataset', datasets],
    ] as const
  ).flatMap(([kind, ids]) => ids.map((id) => ({ kind, id })));
  const records = await Promise.all(wanted.map(({ id }) => store.get(id)));
  const unknown = wanted.filter(({ kind }, i) => records[i]?.kind !== kind).map(({ id }) => id);
  if (unknown.length > 0) {
    throw new ApiProblem(
      'unknown-artifact',
      `not stored artifacts of the kind the recipe needs: ${unknown.join(', ')}`,
      {
        artifacts: unknown,
      },
    );
  }
  if (dataDriven) await checkSelectionSplits(store, evaluation!);
  const read = new Map(wanted.map(({ id }, i) => [id, records[i]!]));
  const resolver = new ArtifactInputs(store, { headers, records: read });
  if (dataDriven) {
    try {
      await planDataDrivenMerge(recipe, resolver, evaluation!.tasks.length);
    } finally {
      await resolver.closeAll();
    }
    return { inputs: [...references.models, ...references.adapters, ...datasets] };
  }
  let plan: Awaited<ReturnType<typeof planMerge>>;
  try {
    plan = await planMerge(recipe, resolver);
  } catch (error) {
    await resolver.closeAll();
    throw error;
  }
  await closePlan(plan);
  return { inputs: [...references.models, ...references.adapters, ...datasets] };
}

/** A data-driven method fits the merge to the `validation` datasets: a test split there would select on test. */
async function checkSelectionSplits(store: ArtifactStore, evaluation: MergeEvaluation): Promise<void> {
  for (const [i, task] of evaluation.tasks.entries()) {
    const record = await store.get(task.validation);
    if (record?.split === 'test') {
      throw new MergePlanError(
        'test_split_for_selection',
        `evaluation.tasks[${i}].validation is ${task.validation}, a test split: a data-driven method fits the merge to it, which would select on test`,
        { parameter: `evaluation.tasks[${i}].validation` },
      );
    }
  }
}
