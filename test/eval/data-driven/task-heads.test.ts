// Data-driven methods read task t through task t's head. A task that names a head (a stored head, another
// artifact's classifier) must give exactly the merge one gets when that head is written into the task's input
// itself, and another merge than with the input's own head: for the model methods (Fisher, RegMean) and the
// adapter methods (LoraHub in parameter space, AdaMerging in delta space).
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TaskHead } from '../../../src/eval/heads.ts';
import {
  type HostTensor,
  readSafetensors,
  writeSafetensorsFile,
} from '../../../src/model/io/host-tensors.ts';
import { removeScratchDirs, testBackend } from '../../model/helpers.ts';
import {
  blockTask,
  buildTaskCase,
  MLP_BASE,
  perturbedModels,
  runMethod,
  type TaskCase,
} from './task-case.ts';

/** A head for the MLP fixture (4 classes over its last 16 hidden units), far from any trained one. */
function strangeHead(): TaskHead {
  return {
    weight: {
      dtype: 'F32',
      shape: [4, 16],
      data: Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 2.1)),
    },
    bias: { dtype: 'F32', shape: [4], data: Float32Array.from([0.3, -0.2, 0.1, -0.4]) },
  };
}

/** A copy of `dir` whose checkpoint `file` carries `head` as `<prefix>classifier.*`. */
async function withHead(dir: string, file: string, prefix: string, head: TaskHead): Promise<string> {
  const out = `${dir}-headed`;
  cpSync(dir, out, { recursive: true });
  const { tensors, metadata } = await readSafetensors(path.join(dir, file));
  const entries: Array<[string, HostTensor]> = [...tensors].map(([name, t]) => [
    name,
    name === `${prefix}classifier.weight`
      ? head.weight
      : name === `${prefix}classifier.bias`
        ? head.bias!
        : t,
  ]);
  assert.ok(tensors.has(`${prefix}classifier.weight`), `${file} carries a classifier to replace`);
  await writeSafetensorsFile(path.join(out, file), entries, metadata);
  return out;
}

const bytes = (dir: string, file: string) => readFileSync(path.join(dir, file));

/** The task as a 2-class one (labels mod 2), for heads with their own number of classes. */
const twoClass = (t: TaskCase['tasks'][number]) => ({
  ...t,
  validation: {
    ...t.validation,
    labels: t.validation.labels.map((label) => label % 2),
    classNames: ['even', 'odd'],
  },
});

describe('data-driven methods honour each task head', () => {
  let models: TaskCase;
  let adapters: TaskCase;
  /** LoraHub over the task adapters (a short search: enough to see a head steer it). */
  const lorahubOverAdapters = () => ({
    merge_method: 'lorahub',
    base_model: path.relative(adapters.dir, MLP_BASE),
    models: adapters.inputs.map((input) => ({ adapter: path.relative(adapters.dir, input) })),
    parameters: { max_evaluations: 8, examples: 24 },
  });
  before(async () => {
    await testBackend();
    const inputs = await perturbedModels(2, 0.2);
    models = {
      dir: path.dirname(inputs[0]),
      inputs,
      tasks: [0, 1].map((i) => ({ name: `task-${i}`, validation: blockTask(i, 2, 48, 'validation', 2) })),
      tests: [],
    };
    adapters = await buildTaskCase('lora', 2);
  });
  after(removeScratchDirs);

  /** The merge with task 1 read through the strange head, the same with it written into input 1, and without. */
  async function threeWays(setup: TaskCase, kind: 'model' | 'adapter', recipe: Record<string, unknown>) {
    const head = strangeHead();
    const file = kind === 'model' ? 'model.safetensors' : 'adapter_model.safetensors';
    const prefix = kind === 'model' ? '' : 'base_model.model.';
    const headed = await withHead(setup.inputs[1], file, prefix, head);
    const rel = (p: string) => path.relative(setup.dir, p);
    const body = (inputs: string[]) => ({
      ...recipe,
      ...(kind === 'adapter' ? { base_model: rel(MLP_BASE) } : {}),
      models: inputs.map((input) => ({ [kind]: rel(input) })),
    });
    const named = await runMethod(
      { ...setup, tasks: setup.tasks.map((t, i) => (i === 1 ? { ...t, head } : t)) },
      body(setup.inputs),
    );
    const written = await runMethod(setup, body([setup.inputs[0], headed]));
    const own = await runMethod(setup, body(setup.inputs));
    const out = named.kind === 'model' ? 'model.safetensors' : 'adapter_model.safetensors';
    return {
      named: bytes(named.outDir, out),
      written: bytes(written.outDir, out),
      own: bytes(own.outDir, out),
      learned: [named.report.coefficients, written.report.coefficients, own.report.coefficients],
    };
  }

  for (const method of ['fisher', 'regmean']) {
    it(`${method} over models`, async () => {
      const merged = await threeWays(models, 'model', { merge_method: method });
      assert.ok(merged.named.equals(merged.written), 'the named head acts as if it were the input’s');
      assert.ok(!merged.named.equals(merged.own), 'the head changes the merge');
    });
  }

  it('lorahub over adapters (parameter space)', async () => {
    const merged = await threeWays(adapters, 'adapter', {
      merge_method: 'lorahub',
      parameters: { max_evaluations: 8, examples: 24 },
    });
    assert.deepEqual(merged.learned[0], merged.learned[1]);
    assert.ok(merged.named.equals(merged.written));
    assert.notDeepEqual(merged.learned[0], merged.learned[2], 'the head changes what LoraHub learns');
  });

  it('lorahub over adapters reads a task through a head with its own number of classes', async () => {
    // Task 1 becomes a 2-class task (labels mod 2) read through a 2-class head on the 4-class body.
    const binary = strangeHead();
    binary.weight = { dtype: 'F32', shape: [2, 16], data: binary.weight.data.slice(0, 32) };
    binary.bias = { dtype: 'F32', shape: [2], data: Float32Array.from([0.2, -0.1]) };
    const recipe = lorahubOverAdapters();
    const tasks = adapters.tasks.map((t, i) => (i === 1 ? { ...twoClass(t), head: binary } : t));
    const named = await runMethod({ ...adapters, tasks }, recipe);
    const other = strangeHead();
    other.weight = { dtype: 'F32', shape: [2, 16], data: other.weight.data.slice(32, 64) };
    other.bias = { dtype: 'F32', shape: [2], data: Float32Array.from([-0.3, 0.4]) };
    const otherHead = await runMethod(
      { ...adapters, tasks: adapters.tasks.map((t, i) => (i === 1 ? { ...twoClass(t), head: other } : t)) },
      recipe,
    );
    assert.notDeepEqual(
      named.report.coefficients,
      otherHead.report.coefficients,
      'the 2-class head steers LoraHub',
    );
    // The merged adapter keeps the body's own (4-class) saved head: task heads live beside it, never in it.
    const { tensors } = await readSafetensors(path.join(named.outDir, 'adapter_model.safetensors'));
    for (const [name, tensor] of tensors) {
      if (name.endsWith('classifier.weight')) assert.equal(tensor.shape[0], 4, name);
    }
  });

  it('reads a task through a weight-only head with its own number of classes as a zero bias', async () => {
    // The body's classifier has a bias; the stored head has none: it reads as bias 0, never the body's.
    const binaryHead = (bias: TaskHead['bias']): TaskHead => ({
      weight: { dtype: 'F32', shape: [2, 16], data: strangeHead().weight.data.slice(0, 32) },
      bias,
    });
    const recipe = lorahubOverAdapters();
    const run = (head: TaskHead) =>
      runMethod(
        { ...adapters, tasks: adapters.tasks.map((t, i) => (i === 1 ? { ...twoClass(t), head } : t)) },
        recipe,
      );
    const weightOnly = await run(binaryHead(null));
    const zeroBias = await run(binaryHead({ dtype: 'F32', shape: [2], data: new Float32Array(2) }));
    const otherBias = await run(binaryHead({ dtype: 'F32', shape: [2], data: Float32Array.from([3, -3]) }));
    assert.deepEqual(weightOnly.report.coefficients, zeroBias.report.coefficients);
    assert.notDeepEqual(weightOnly.report.coefficients, otherBias.report.coefficients, 'the bias matters');
  });

  it('lorahub merges adapters that save heads of different shapes, each task keeping its own', async () => {
    // Adapter 1 was fine-tuned as a 2-class task: its saved classifier is [2, 16] where adapter 0's is [4, 16].
    const binary: TaskHead = {
      weight: { dtype: 'F32', shape: [2, 16], data: strangeHead().weight.data.slice(16, 48) },
      bias: { dtype: 'F32', shape: [2], data: Float32Array.from([0.1, -0.2]) },
    };
    const headed = await withHead(
      adapters.inputs[1],
      'adapter_model.safetensors',
      'base_model.model.',
      binary,
    );
    const setup: TaskCase = {
      ...adapters,
      inputs: [adapters.inputs[0], headed],
      tasks: adapters.tasks.map((t, i) =>
        i === 1
          ? {
              ...t,
              validation: {
                ...t.validation,
                labels: t.validation.labels.map((label) => label % 2),
                classNames: ['even', 'odd'],
              },
            }
          : t,
      ),
    };
    const recipe = (inputs: string[]) => ({
      merge_method: 'lorahub',
      base_model: path.relative(setup.dir, MLP_BASE),
      models: inputs.map((input) => ({ adapter: path.relative(setup.dir, input) })),
      parameters: { max_evaluations: 8, examples: 24 },
    });
    const merged = await runMethod(setup, recipe(setup.inputs));
    // Task 1 is read through its own 2-class head: naming that head explicitly gives the same search.
    const named = await runMethod(
      { ...setup, tasks: setup.tasks.map((t, i) => (i === 1 ? { ...t, head: binary } : t)) },
      recipe(setup.inputs),
    );
    assert.deepEqual(merged.report.coefficients, named.report.coefficients);
    // The merged adapter's saved classifier has the body's shape and combines only the heads of that shape
    // (adapter 0's, over the base's): the 2-class head is never averaged into it.
    const { tensors } = await readSafetensors(path.join(merged.outDir, 'adapter_model.safetensors'));
    const classifier = [...tensors].find(([name]) => name.endsWith('classifier.weight'));
    assert.ok(classifier, 'the merged adapter saves the classifier');
    assert.deepEqual(classifier[1].shape, [4, 16]);
    // The dense methods over the same adapters (AdaMerging merges W₀ + ΔWᵢ) keep the body's classifier too.
    const dense = await runMethod(setup, {
      ...recipe(setup.inputs),
      merge_method: 'adamerging',
      parameters: { steps: 2 },
    });
    const model = await readSafetensors(path.join(dense.outDir, 'model.safetensors'));
    assert.deepEqual(model.tensors.get('classifier.weight')?.shape, [4, 16]);
  });

  it('adamerging over adapters', async () => {
    const merged = await threeWays(adapters, 'adapter', {
      merge_method: 'adamerging',
      parameters: { steps: 4 },
    });
    assert.deepEqual(merged.learned[0], merged.learned[1]);
    assert.ok(merged.named.equals(merged.written));
    assert.notDeepEqual(merged.learned[0], merged.learned[2], 'the head changes what AdaMerging learns');
  });
});
