// The fused, blocked GTA kernel (mergeEncoded) against the unfused reference path (mergeTensor, then
// encoding): byte-identical outputs and the same non-finite count, for every method that has one, over
// input and output dtypes, sizes around the block edge, ties at the top-k cutoff, zero (null) inputs,
// per-model densities, rescale/normalize/lambda variants and non-finite inputs; and the range-split
// form (statistics per range, then the merge per range, as worker threads run it) against the same bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withMaterializeLimit } from '../../src/merge/fused-gta.ts';
import type { EncodedTensorInput, ParameterValue, TensorMergeMethod } from '../../src/merge/method.ts';
import { countNonFinite } from '../../src/merge/kernels/reductions.ts';
import { randomForTensor } from '../../src/merge/random.ts';
import { MERGE_METHODS } from '../../src/merge/registry.ts';
import {
  arrayTypeOf,
  type DType,
  decodeToFloat32,
  encodeFromFloat32,
  seededUniform,
  type TypedArray,
} from '../../src/tensors/index.ts';

const fused = MERGE_METHODS.filter(
  (m): m is TensorMergeMethod => m.kind === 'tensor' && m.mergeEncoded !== undefined,
);

test('the GTA methods without rank- or outlier-based sparsifiers have a fused kernel', () => {
  assert.deepEqual(fused.map((m) => m.name).sort(), ['dare_linear', 'dare_ties', 'task_arithmetic', 'ties']);
});

/** Base values on a coarse grid (so |δ| ties are common) and fine-tunes that often equal the base. */
function makeInput(dtype: DType, n: number, seed: number, base?: Float32Array): Float32Array {
  const random = seededUniform(seed);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = random();
    if (!base) values[i] = Math.round((r - 0.5) * 64) / 256;
    else if (r < 0.15) values[i] = base[i];
    else values[i] = base[i] + Math.round((random() - 0.5) * 16) / 512;
  }
  // round through the stored dtype so decoding gives these values back exactly
  return decodeToFloat32({ dtype, shape: [n], data: encodeFromFloat32(values, dtype) });
}

interface Case {
  method: TensorMergeMethod;
  n: number;
  inputDtype: DType;
  outDtype: DType;
  densities: number[];
  global: Record<string, ParameterValue>;
  nullModel?: boolean;
  nonFinite?: boolean;
}

function defaults(method: TensorMergeMethod): Record<string, ParameterValue> {
  const params: Record<string, ParameterValue> = {};
  for (const spec of method.parameters)
    if (spec.scope === 'global' && spec.default !== undefined) params[spec.name] = spec.default;
  return params;
}

function runBoth(c: Case): void {
  const shape = c.n % 64 === 0 ? [c.n / 64, 64] : [c.n];
  const base = makeInput(c.inputDtype, c.n, 1);
  const models = c.densities.map((_, m) =>
    c.nullModel && m === 1 ? null : makeInput(c.inputDtype, c.n, 10 + m, base),
  );
  if (c.nonFinite) {
    models[0]![3] = Number.NaN;
    models[0]![5] = Number.POSITIVE_INFINITY;
  }
  const weights = [0.4, -0.3, 0.75, 0.2];
  const params = { ...defaults(c.method), ...c.global };
  const perModel = c.densities.map((density, m) => ({ weight: weights[m], density }));
  const name = `layers.${c.n}.weight`;

  const reference = c.method.mergeTensor({
    tensorName: name,
    shape,
    inputs: [
      ...models.map((data, m) => ({
        model: `m${m}`,
        isBase: false,
        data: data ? data.slice() : new Float32Array(c.n),
        params: perModel[m],
      })),
      { model: 'base', isBase: true, data: base.slice(), params: {} },
    ],
    params,
    random: randomForTensor(7, name),
    inputsWritable: true,
  });
  const expected = encodeFromFloat32(reference, c.outDtype);

  const stored = (data: Float32Array | null): TypedArray | null =>
    data ? encodeFromFloat32(data, c.inputDtype) : null;
  const out = new (arrayTypeOf(c.outDtype))(c.n) as TypedArray;
  const inputs: EncodedTensorInput[] = [
    ...models.map((data, m) => ({
      model: `m${m}`,
      isBase: false,
      dtype: c.inputDtype,
      data: stored(data),
      params: perModel[m],
    })),
    { model: 'base', isBase: true, dtype: c.inputDtype, data: stored(base), params: {} },
  ];
  const nonFinite = c.method.mergeEncoded!({
    tensorName: name,
    shape,
    inputs,
    params,
    random: randomForTensor(7, name),
    outDtype: c.outDtype,
    out,
  });
  const label = `${c.method.name} n=${c.n} ${c.inputDtype}->${c.outDtype} densities=${c.densities} ${JSON.stringify(c.global)}`;
  assert.deepEqual(
    Buffer.from(out.buffer, out.byteOffset, out.byteLength),
    Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
    label,
  );
  assert.equal(nonFinite, countNonFinite(reference), label);

  // Range splits, run here phase by phase: boundaries on and off kernel blocks, a one-element range.
  const split = c.method.rangeSplit;
  if (!split?.splits(c.n, params, perModel)) return;
  splitChecks.push(async () => {
    splitMethods.add(c.method.name);
    const third = Math.floor(c.n / 3);
    const layouts = [
      [0, c.n],
      [0, 1, c.n],
      [0, third, Math.max(third, Math.min(c.n, 8197)), c.n],
    ];
    for (const cuts of layouts) {
      const ranges = cuts
        .slice(1)
        .map((to, i) => [cuts[i], to] as const)
        .filter(([from, to]) => to > from);
      const rangeOut = new (arrayTypeOf(c.outDtype))(c.n) as TypedArray;
      const ctx = {
        tensorName: name,
        shape,
        inputs,
        params,
        random: randomForTensor(7, name),
        outDtype: c.outDtype,
        out: rangeOut,
      };
      const rangeNonFinite = await split.mergeInRanges(ranges, async (phase) => split.runPhase(ctx, phase));
      const where = `${label} ranges ${JSON.stringify(ranges)}`;
      assert.deepEqual(
        Buffer.from(rangeOut.buffer, rangeOut.byteOffset, rangeOut.byteLength),
        Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
        where,
      );
      assert.equal(rangeNonFinite, countNonFinite(reference), where);
    }
  });
}

/** Range-split checks queued by runBoth (splits are decided under the materialization limit in force). */
const splitChecks: Array<() => Promise<void>> = [];
const splitMethods = new Set<string>();

async function runSplitChecks(): Promise<void> {
  for (const check of splitChecks.splice(0)) await check();
}

test('fused and unfused GTA merges give identical bytes (BF16 in, BF16 out; sizes around a block)', () => {
  for (const method of fused) {
    for (const n of [7, 64 * 128, 8193, 64 * 330]) {
      runBoth({ method, n, inputDtype: 'BF16', outDtype: 'BF16', densities: [0.2, 0.2, 0.2], global: {} });
    }
  }
});

test('fused and unfused agree across dtypes, densities and global options', () => {
  allCases();
});

test('fused and unfused agree when the fused kernel recomputes task vectors in every pass', async () => {
  // tensors above the limit are not materialized: every pass decodes and subtracts again
  withMaterializeLimit(1000, allCases);
  // ...and are the ones split over ranges where the statistics allow it exactly
  await runSplitChecks();
  assert.deepEqual([...splitMethods].sort(), ['dare_linear', 'dare_ties', 'task_arithmetic', 'ties']);
});

test('range splits are refused for TIES with rescale (its sums after trimming run in index order)', () => {
  const method = (name: string) => fused.find((m) => m.name === name)!;
  const big = 5 * 1024 * 1024; // above the materialization limit
  const sparse: Array<Record<string, ParameterValue>> = [{ weight: 1, density: 0.2 }, {}];
  assert.equal(method('ties').rangeSplit!.splits(big, {}, sparse), true);
  assert.equal(method('ties').rangeSplit!.splits(big, { rescale: true }, sparse), false);
  assert.equal(method('dare_ties').rangeSplit!.splits(big, {}, sparse), true, 'draws whole, merge split');
  assert.equal(method('dare_ties').rangeSplit!.splits(big, {}, [{ weight: 1, density: 1 }, {}]), true);
  assert.equal(method('ties').rangeSplit!.splits(1000, {}, sparse), false, 'small tensors merge whole');
});

function allCases(): void {
  const dtypes: Array<[DType, DType]> = [
    ['F32', 'F32'],
    ['F16', 'F16'],
    ['F32', 'BF16'],
    ['BF16', 'F32'],
  ];
  for (const method of fused) {
    for (const [inputDtype, outDtype] of dtypes) {
      runBoth({ method, n: 9000, inputDtype, outDtype, densities: [0.5, 1, 0.05], global: {} });
    }
    const variants: Array<Record<string, ParameterValue>> = [
      { rescale: true },
      { rescale: false, normalize: true },
      { normalize: false, lambda: 0.7 },
      { normalize: true, lambda: 2 },
    ];
    for (const global of variants) {
      runBoth({
        method,
        n: 17000,
        inputDtype: 'BF16',
        outDtype: 'BF16',
        densities: [0.3, 0.999, 0.1],
        global,
      });
    }
    runBoth({ method, n: 5000, inputDtype: 'BF16', outDtype: 'BF16', densities: [0.9, 0.9], global: {} });
    runBoth({
      method,
      n: 12000,
      inputDtype: 'BF16',
      outDtype: 'BF16',
      densities: [0.2, 0.4, 0.6],
      global: {},
      nullModel: true,
    });
    runBoth({
      method,
      n: 3000,
      inputDtype: 'F32',
      outDtype: 'BF16',
      densities: [0.5, 0.5],
      global: { rescale: true },
      nonFinite: true,
    });
  }
}

test('fused TIES names the density that keeps nothing, as the unfused path does', () => {
  const ties = fused.find((m) => m.name === 'ties')!;
  assert.throws(
    () => runBoth({ method: ties, n: 3, inputDtype: 'F32', outDtype: 'F32', densities: [0.2], global: {} }),
    /density 0.2 keeps no entry of a 3-element tensor/,
  );
});
