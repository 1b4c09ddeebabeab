import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { gaussian, seededStream } from '../../../src/merge/linalg/seeded-random.ts';
import type { TensorInput, TensorMergeContext } from '../../../src/merge/method.ts';
import { slerp } from '../../../src/merge/methods/slerp.ts';
import { runMergeCommand } from '../../../src/cli/merge-command.ts';
import { tempDir } from '../../helpers/redis.ts';
import { compareTensors, goldenCaseDir, readGoldenTensors } from '../../helpers/golden.ts';

function context(t: number, inputs: TensorInput[], shape: number[]): TensorMergeContext {
  return {
    tensorName: 'x',
    shape,
    inputs,
    params: { t },
    random: () => {
      throw new Error('slerp draws no random numbers');
    },
  };
}

const input = (model: string, data: Float32Array, isBase: boolean): TensorInput => ({
  model,
  data,
  isBase,
  params: {},
});

test('golden mergekit_slerp: every tensor within rtol 1e-5, atol 2e-6', async () => {
  const dir = goldenCaseDir('mergekit_slerp');
  const [base, m0, expected] = await Promise.all(
    ['base', 'm0', 'expected'].map((f) => readGoldenTensors(path.join(dir, `${f}.safetensors`))),
  );
  assert.equal(expected.size, 4);
  for (const [name, want] of expected) {
    const inputs = [
      input('base.safetensors', base.get(name)!.data, true),
      input('m0.safetensors', m0.get(name)!.data, false),
    ];
    const got = slerp.mergeTensor(context(0.3, inputs, want.shape));
    assert.equal(compareTensors(got, want.data, { rtol: 1e-5, atol: 2e-6 }), null, name);
  }
});

function random(n: number, seed: number, scale = 1): Float32Array {
  const r = seededStream(seed);
  return Float32Array.from({ length: n }, () => scale * gaussian(r));
}

test('slerp follows the float64 restatement on random vectors (slerp branch)', () => {
  const v0 = random(50, 1);
  const v1 = random(50, 2);
  const t = 0.37;
  const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  const u0 = Array.from(v0, (x) => x / norm(v0));
  const u1 = Array.from(v1, (x) => x / norm(v1));
  const theta = Math.acos(u0.reduce((a, x, i) => a + x * u1[i], 0));
  const got = slerp.mergeTensor(context(t, [input('b', v0, true), input('m', v1, false)], [50]));
  for (let i = 0; i < 50; i++) {
    const want = (Math.sin((1 - t) * theta) * v0[i] + Math.sin(t * theta) * v1[i]) / Math.sin(theta);
    assert.ok(Math.abs(got[i] - want) < 1e-6, `${i}`);
  }
});

test('slerp: t = 0 gives the base, t = 1 the model; the base may be listed after the model', () => {
  const v0 = random(20, 3);
  const v1 = random(20, 4);
  const at0 = slerp.mergeTensor(context(0, [input('m', v1, false), input('b', v0, true)], [20]));
  const at1 = slerp.mergeTensor(context(1, [input('m', v1, false), input('b', v0, true)], [20]));
  for (let i = 0; i < 20; i++) {
    assert.ok(Math.abs(at0[i] - v0[i]) < 1e-6);
    assert.ok(Math.abs(at1[i] - v1[i]) < 1e-6);
  }
});

test('slerp: nearly colinear vectors (|dot| > 0.9995) take the lerp of the raw tensors', () => {
  const v0 = random(16, 5);
  // v1 = 3·v0 + tiny noise: same direction, different norm; slerp of unit vectors would keep the norm of v0.
  const noise = random(16, 6, 1e-4);
  const v1 = Float32Array.from(v0, (x, i) => 3 * x + noise[i]);
  const got = slerp.mergeTensor(context(0.25, [input('b', v0, true), input('m', v1, false)], [16]));
  for (let i = 0; i < 16; i++) assert.ok(Math.abs(got[i] - (0.75 * v0[i] + 0.25 * v1[i])) < 1e-6);
});

test('slerp: anti-parallel inputs (dot < -0.9995) also lerp; a zero base is not normalised', () => {
  const v0 = random(8, 7);
  const v1 = Float32Array.from(v0, (x) => -2 * x);
  const got = slerp.mergeTensor(context(0.5, [input('b', v0, true), input('m', v1, false)], [8]));
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(got[i] - (0.5 * v0[i] + 0.5 * v1[i])) < 1e-6);
  // zero base: dot = 0, θ = π/2, so the result is sin(tπ/2)·v1.
  const zero = new Float32Array(8);
  const fromZero = slerp.mergeTensor(context(0.3, [input('b', zero, true), input('m', v1, false)], [8]));
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(fromZero[i] - Math.sin((0.3 * Math.PI) / 2) * v1[i]) < 1e-6);
});

test('slerp declares t as a required global parameter and needs a base', () => {
  assert.equal(slerp.baseModel, 'required');
  assert.deepEqual(
    slerp.parameters.map((p) => [p.name, p.scope, p.required]),
    [['t', 'global', true]],
  );
  assert.throws(() =>
    slerp.mergeTensor(context(0.5, [input('a', random(4, 1), false), input('b', random(4, 2), false)], [4])),
  );
});

test('mergekit_slerp end to end: the recipe through lorafuse merge (planner order, base, parameters)', async () => {
  const out = tempDir('lorafuse-slerp');
  try {
    const outDir = path.join(out.dir, 'merged');
    const code = await runMergeCommand([
      path.join(goldenCaseDir('mergekit_slerp'), 'recipe.yaml'),
      '--out',
      outDir,
    ]);
    assert.equal(code, 0);
    const actual = await readGoldenTensors(path.join(outDir, 'model.safetensors'));
    const expected = await readGoldenTensors(
      path.join(goldenCaseDir('mergekit_slerp'), 'expected.safetensors'),
    );
    assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
    for (const [name, want] of expected) {
      assert.equal(compareTensors(actual.get(name)!.data, want.data, { rtol: 1e-5, atol: 2e-6 }), null, name);
    }
  } finally {
    out.remove();
  }
});
