// The `evaluation` block of POST /v1/merges, checked and resolved before queueing: task i belongs to recipe input
// i; its head defaults to that input's own (an adapter's modules_to_save classifier, a model's classifier) and
// its reference to the input itself. Every id is checked for existence and kind here, so a job never starts
// with a task it cannot evaluate.
import { Type } from 'typebox';
import type { Recipe } from '../../../merge/index.ts';
import type { EvaluationTask, MergeEvaluation } from '../../../queue/index.ts';
import type { ArtifactRecord, ArtifactStore } from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';
import { requireHeadFitsDataset } from '../jobs/head-classes.ts';
import { requireRunnable } from '../jobs/job-inputs.ts';
import { MergeDisentanglementBody, resolveDisentanglement } from './disentanglement-option.ts';

const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

export const EvaluationTaskBody = Type.Object(
  {
    name: Type.String({
      pattern: TASK_NAME.source,
      description: 'Unique per merge; names the task everywhere.',
    }),
    validation: Type.String({
      description: 'Dataset id: the split searches select on (never a test split).',
    }),
    test: Type.String({ description: 'Dataset id: the split reported for the chosen merge.' }),
    head: Type.Optional(
      Type.String({
        description:
          "How this task reads the merged body: an adapter id (its modules_to_save classifier), a head id (POST /v1/heads), a model id (its classifier), or 'model' (the evaluated model's own classifier). Default: the input adapter's head when it carries one, the input model's classifier. It must answer as many classes as both datasets' class_names (else 422 head-class-mismatch naming the task).",
      }),
    ),
    reference: Type.Optional(
      Type.String({
        description:
          'The individually fine-tuned adapter or model whose accuracy normalizes the merged one. Default: the recipe input this task belongs to.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const MergeEvaluationBody = Type.Object(
  {
    tasks: Type.Array(EvaluationTaskBody, {
      minItems: 1,
      maxItems: 32,
      description: 'One task per recipe input, in recipe order.',
    }),
    disentanglement: Type.Optional(MergeDisentanglementBody),
  },
  {
    additionalProperties: false,
    description: 'Evaluate the merged artifact per task and write a report artifact.',
  },
);

function invalid(path: string, message: string): ApiProblem {
  return new ApiProblem('invalid-evaluation', `${path}: ${message}`, { path });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function stored(
  store: ArtifactStore,
  id: unknown,
  path: string,
  kinds: string[],
): Promise<ArtifactRecord> {
  if (typeof id !== 'string' || id === '') throw invalid(path, 'must be an artifact id');
  const record = await store.get(id);
  if (!record || !kinds.includes(record.kind)) {
    throw new ApiProblem('unknown-artifact', `${path}: ${id} is not a stored ${kinds.join(' or ')}`, {
      artifacts: [id],
      fields: [path],
    });
  }
  return record;
}

/** An adapter carries a task head when PEFT saved its classifier whole (modules_to_save). */
function adapterHasHead(adapter: ArtifactRecord): boolean {
  const saved = adapter.config?.modules_to_save;
  return Array.isArray(saved) && saved.includes('classifier');
}

/** The head spec of a stored artifact named as a head: its modules_to_save, the stored head, or its classifier. */
export function headOf(record: ArtifactRecord): string {
  if (record.kind === 'adapter') return `adapter:${record.id}`;
  if (record.kind === 'head') return `head:${record.id}`;
  return `model:${record.id}`;
}

/** The model an adapter input runs on: the recipe's base_model, else the one it was uploaded against. */
async function baseOf(
  store: ArtifactStore,
  recipe: Recipe,
  adapter: ArtifactRecord,
): Promise<ArtifactRecord | null> {
  const id = recipe.base_model ?? adapter.baseModel;
  return id ? await store.get(id) : null;
}

export async function resolveEvaluation(
  store: ArtifactStore,
  recipe: Recipe,
  body: unknown,
): Promise<MergeEvaluation> {
  if (!isObject(body)) throw invalid('evaluation', 'must be an object {tasks: [...]}');
  for (const key of Object.keys(body))
    if (key !== 'tasks' && key !== 'disentanglement') throw invalid(`evaluation.${key}`, 'unknown field');
  const tasks = body.tasks;
  if (!Array.isArray(tasks) || tasks.length === 0)
    throw invalid('evaluation.tasks', 'must be a non-empty list');
  if (tasks.length !== recipe.models.length) {
    throw invalid(
      'evaluation.tasks',
      `has ${tasks.length} tasks for ${recipe.models.length} recipe inputs: task i belongs to input i`,
    );
  }
  const names = new Set<string>();
  const resolved: EvaluationTask[] = [];
  let needsBase = false;
  for (const [i, task] of tasks.entries()) {
    const path = `evaluation.tasks[${i}]`;
    if (!isObject(task)) throw invalid(path, 'must be an object');
    for (const key of Object.keys(task)) {
      if (!['name', 'validation', 'test', 'head', 'reference'].includes(key))
        throw invalid(`${path}.${key}`, 'unknown field');
    }
    if (typeof task.name !== 'string' || !TASK_NAME.test(task.name)) {
      throw invalid(`${path}.name`, 'must be 1-100 letters, digits, _ or -, starting with a letter or digit');
    }
    if (names.has(task.name)) throw invalid(`${path}.name`, `${task.name} names two tasks`);
    names.add(task.name);
    const validation = await stored(store, task.validation, `${path}.validation`, ['dataset']);
    const test = await stored(store, task.test, `${path}.test`, ['dataset']);
    if (validation.split === 'test')
      throw invalid(`${path}.validation`, `${validation.id} is a test split: never select on test`);
    if (validation.id === test.id) throw invalid(`${path}.test`, 'must be another dataset than validation');
    const input = recipe.models[i];
    const inputId = (input.adapter ?? input.model)!;
    const inputRecord = await stored(store, inputId, `models[${i}]`, ['adapter', 'model']);
    let head: string;
    if (task.head === 'model') head = 'model';
    else if (task.head !== undefined)
      head = headOf(await stored(store, task.head, `${path}.head`, ['adapter', 'head', 'model']));
    else if (inputRecord.kind === 'adapter')
      head = adapterHasHead(inputRecord) ? `adapter:${inputRecord.id}` : 'model';
    else head = `model:${inputRecord.id}`;
    if (head.startsWith('adapter:')) {
      const headAdapter = await stored(store, head.slice('adapter:'.length), `${path}.head`, ['adapter']);
      if (!adapterHasHead(headAdapter))
        throw invalid(`${path}.head`, `adapter ${headAdapter.id} saves no classifier head (modules_to_save)`);
    }
    // The head must answer the task's classes; `model` reads the input model's classifier (an adapter's base's).
    const own = inputRecord.kind === 'model' ? inputRecord : await baseOf(store, recipe, inputRecord);
    for (const [split, dataset] of [
      ['validation', validation],
      ['test', test],
    ] as const) {
      await requireHeadFitsDataset(store, {
        spec: head,
        own,
        dataset,
        task: `task ${task.name}`,
        field: `${path}.${split}`,
      });
    }
    const reference =
      task.reference === undefined
        ? inputRecord
        : await stored(store, task.reference, `${path}.reference`, ['adapter', 'model']);
    if (reference.kind === 'model') requireRunnable(reference, `${path}.reference`);
    if (reference.kind === 'adapter' || inputRecord.kind === 'adapter') needsBase = true;
    resolved.push({
      name: task.name,
      validation: validation.id,
      test: test.id,
      head,
      reference: reference.id,
    });
  }
  let baseModel: string | null = recipe.base_model ?? null;
  if (baseModel === null && needsBase) {
    // Adapters run on the model they were trained on (or checked against at upload).
    for (const input of recipe.models) {
      const adapter = input.adapter ? await store.get(input.adapter) : null;
      if (adapter?.baseModel) {
        baseModel = adapter.baseModel;
        break;
      }
    }
    if (baseModel === null) {
      throw invalid(
        'base_model',
        'evaluating adapters needs a base model: set base_model, or upload the adapters with one',
      );
    }
  }
  if (baseModel !== null) {
    const base = await stored(store, baseModel, 'base_model', ['model']);
    requireRunnable(base, 'base_model');
  }
  const disentanglement = resolveDisentanglement(recipe, resolved, baseModel, body.disentanglement);
  return { tasks: resolved, baseModel, ...(disentanglement ? { disentanglement } : {}) };
}
