import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gaussian, seededStream } from '../../../src/merge/linalg/seeded-random.ts';
import type { ParameterValue, TensorInput } from '../../../src/merge/method.ts';
import { nuslerp } from '../../../src/merge/methods/nuslerp.ts';

const ROWS = 6;
const COLS = 9;

function random(n: number, seed: number, scale = 1): Float32Array {
  const r = seededStream(seed);
  return Float32Array.from({ length: n }, () => scale * gaussian(r));
}

/** Float64 restatement of mergekit's nuslerp() on one pair of vectors. */
function slerpPair(t: number, v0: number[], v1: number[]): number[] {
  const norm = (v: number[]) => Math.max(Math.hypot(...v), 1e-7);
  const cos = v0.reduce((acc, x, i) => acc + (x / norm(v0)) * (v1[i] / norm(v1)), 0);
  const theta = Math.acos(Math.max(-1, Math.min(1, cos)));
  if (Math.abs(Math.sin(theta)) < 1e-8) return v0.map((x, i) => (1 - t) * x + t * v1[i]);
  return v0.map((x, i) => (Math.sin((1 - t) * theta) * x + Math.sin(t * theta) * v1[i]) / Math.sin(theta));
}

const rowsOf = (m: ArrayLike<number>) =>
  Array.from({ length: ROWS }, (_, r) => Array.from({ length: COLS }, (_, c) => m[r * COLS + c]));
const colsOf = (m: ArrayLike<number>) =>
  Array.from({ length: COLS }, (_, c) => Array.from({ length: ROWS }, (_, r) => m[r * COLS + c]));

function run(inputs: TensorInput[], params: Record<string, ParameterValue>, shape = [ROWS, COLS]) {
  return nuslerp.mergeTensor({ tensorName: 'w', shape, inputs, params, random: () => seededStream(0) });
}

const model = (name: string, data: Float32Array, weight: number, isBase = false): TensorInput => ({
  model: name,
  data,
  isBase,
  params: isBase ? {} : { weight },
});

const x0 = random(ROWS * COLS, 1);
const x1 = random(ROWS * COLS, 2);
const base = random(ROWS * COLS, 3);

test('nuslerp with a base (flatten default): base + slerp of the task vectors at t = w₁/(w₀+w₁) = 0.3', () => {
  const got = run([model('m0', x0, 0.7), model('m1', x1, 0.3), model('b', base, 0, true)], {
    nuslerp_flatten: true,
  });
  const tv0 = Array.from(x0, (x, i) => x - base[i]);
  const tv1 = Array.from(x1, (x, i) => x - base[i]);
  const want = slerpPair(0.3, tv0, tv1).map((x, i) => base[i] + x);
  want.forEach((w, i) => {
    assert.ok(Math.abs(got[i] - w) < 1e-5, `${i}`);
  });
});

test('nuslerp_flatten false (nuslerp_rows): every row W[i, :] is slerped separately, t = 0.4', () => {
  const got = run([model('m0', x0, 0.6), model('m1', x1, 0.4)], {
    nuslerp_flatten: false,
    nuslerp_row_wise: false,
  });
  const want = rowsOf(x0).flatMap((row, r) => slerpPair(0.4, row, rowsOf(x1)[r]));
  want.forEach((w, i) => {
    assert.ok(Math.abs(got[i] - w) < 1e-5, `${i}`);
  });
});

test('nuslerp_row_wise true slerps every COLUMN W[:, j] (mergekit code, not its docs)', () => {
  const got = run([model('m0', x0, 0.6), model('m1', x1, 0.4)], {
    nuslerp_flatten: false,
    nuslerp_row_wise: true,
  });
  const cols = colsOf(x0).map((col, c) => slerpPair(0.4, col, colsOf(x1)[c]));
  for (let r = 0; r < ROWS; r++) {
    for (let c = 0; c < COLS; c++) assert.ok(Math.abs(got[r * COLS + c] - cols[c][r]) < 1e-5, `${r},${c}`);
  }
  const rowWise = run([model('m0', x0, 0.6), model('m1', x1, 0.4)], { nuslerp_flatten: false });
  assert.ok(Math.max(...got.map((g, i) => Math.abs(g - rowWise[i]))) > 1e-3);
  assert.match(nuslerp.notes ?? '', /columns/);
});

test('nuslerp: weights summing to ~0 give t = 0.5; colinear vectors lerp', () => {
  const got = run([model('m0', x0, 1), model('m1', x1, -1)], {});
  const want = slerpPair(0.5, Array.from(x0), Array.from(x1));
  want.forEach((w, i) => {
    assert.ok(Math.abs(got[i] - w) < 1e-5);
  });
  const doubled = Float32Array.from(x0, (x) => 2 * x);
  const colinear = run([model('m0', x0, 0.5), model('m1', doubled, 0.5)], {});
  x0.forEach((x, i) => {
    assert.ok(Math.abs(colinear[i] - 1.5 * x) < 1e-5);
  });
});

test('nuslerp declares mergekit parameters and needs exactly two models', () => {
  assert.deepEqual(
    nuslerp.parameters.map((p) => [p.name, p.scope, p.default]),
    [
      ['weight', 'per-model', undefined],
      ['nuslerp_flatten', 'global', true],
      ['nuslerp_row_wise', 'global', false],
    ],
  );
  assert.throws(() => run([model('m0', x0, 1), model('m1', x1, 1), model('m2', base, 1)], {}));
});
