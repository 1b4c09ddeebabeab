// The merge request's `evaluation` block, as far as data-driven methods need it: `tasks`, one per recipe input
// in recipe order, each naming its validation and test datasets (and optionally a head and a reference).
// Structural errors are RecipeErrors (422 invalid-recipe with the path); unknown dataset ids are checked
// with the recipe's artifacts in validate-merge.ts.
import { RecipeError } from '../../../merge/index.ts';
import type { MergeEvaluation, MergeEvaluationTask } from '../../../queue/index.ts';

const TASK_FIELDS = ['name', 'validation', 'test', 'head', 'reference'] as const;

export const evaluationJsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tasks'],
  description:
    'Tasks for the merge. Data-driven methods (GET /v1/methods, kind data-driven) need them: task i is recipe input i, and its validation split is what the method reads.',
  properties: {
    tasks: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'validation', 'test'],
        properties: {
          name: { type: 'string', minLength: 1 },
          validation: { type: 'string', description: 'Dataset id of the validation split.' },
          test: { type: 'string', description: 'Dataset id of the test split.' },
          head: { type: 'string', description: "The task's head (default: the input's own)." },
          reference: {
            type: 'string',
            description: 'The individually fine-tuned artifact that normalizes accuracy.',
          },
        },
      },
    },
  },
} as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the block's structure; undefined when the request has none. */
export function parseEvaluation(value: unknown): MergeEvaluation | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw new RecipeError('invalid_type', 'evaluation', 'must be an object with tasks');
  for (const key of Object.keys(value)) {
    if (key !== 'tasks') throw new RecipeError('unknown_field', `evaluation.${key}`, 'unknown field (tasks)');
  }
  if (!Array.isArray(value.tasks) || value.tasks.length === 0) {
    throw new RecipeError('missing_field', 'evaluation.tasks', 'must be a non-empty list of tasks');
  }
  const names = new Set<string>();
  const tasks = value.tasks.map((entry, i): MergeEvaluationTask => {
    const path = `evaluation.tasks[${i}]`;
    if (!isObject(entry)) throw new RecipeError('invalid_type', path, 'must be an object');
    for (const key of Object.keys(entry)) {
      if (!(TASK_FIELDS as readonly string[]).includes(key)) {
        throw new RecipeError('unknown_field', `${path}.${key}`, `unknown field (${TASK_FIELDS.join(', ')})`);
      }
    }
    const text = (field: string, required: boolean): string | undefined => {
      const v = entry[field];
      if (v === undefined && !required) return undefined;
      if (typeof v !== 'string' || v.trim() === '') {
        throw new RecipeError('invalid_type', `${path}.${field}`, 'must be a non-empty string');
      }
      return v;
    };
    const task: MergeEvaluationTask = {
      name: text('name', true)!,
      validation: text('validation', true)!,
      test: text('test', true)!,
    };
    if (names.has(task.name))
      throw new RecipeError('invalid_value', `${path}.name`, `task ${task.name} is listed twice`);
    names.add(task.name);
    const head = text('head', false);
    const reference = text('reference', false);
    if (head !== undefined) task.head = head;
    if (reference !== undefined) task.reference = reference;
    return task;
  });
  return { tasks };
}

/** Every dataset id the block names (validation and test splits), each once. */
export function evaluationDatasets(evaluation: MergeEvaluation | undefined): string[] {
  return [...new Set((evaluation?.tasks ?? []).flatMap((task) => [task.validation, task.test]))];
}
