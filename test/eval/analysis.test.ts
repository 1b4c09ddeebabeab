// The streamed task-vector analysis against dense, naive computations of the same quantities: cosines and
// norms of flattened task vectors, sign conflicts per layer after a TIES trim, delta-space cosines of dense
// ΔW = s·B·A, and effective ranks from a dense SVD. Tolerance 1e-9 relative (both sides float64).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyzeAdapters, analyzeModels } from '../../src/eval/analysis/analyze-checkpoints.ts';
import { effectiveRank, deltaInner, factorsFrom } from '../../src/eval/analysis/lora-delta-stats.ts';
import { layerOf, trimToTopK } from '../../src/eval/analysis/task-vector-stats.ts';
import { fromArray } from '../../src/merge/linalg/dense.ts';
import { jacobiSvd } from '../../src/merge/linalg/jacobi-svd.ts';
import { Checkpoint, writeSafetensors } from '../../src/tensors/index.ts';

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

function randomArray(n: number, next: () => number, sparsity = 0): Float32Array {
  return Float32Array.from({ length: n }, () => (next() + 0.5 < sparsity ? 0 : next()));
}

async function writeCheckpoint(
  file: string,
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
) {
  await writeSafetensors(
    file,
    Object.entries(tensors).map(([name, t]) => ({
      name,
      dtype: 'F32' as const,
      shape: t.shape,
      data: t.data,
    })),
  );
  return Checkpoint.openFiles({ 'model.safetensors': file });
}

function close(actual: number, expected: number, what: string, tolerance = 1e-9) {
  assert.ok(
    Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} vs ${expected}`,
  );
}

function naiveCosine(vectors: Float64Array[]): number[][] {
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, k) => s + v * b[k], 0);
  return vectors.map((a) => vectors.map((b) => dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b))));
}

/** Sign conflicts written the obvious way: trim each input by sorting indices by |δ|, then count per coordinate. */
function naiveConflicts(deltas: Float64Array[], density: number): { conflicts: number; contested: number } {
  const trimmed = deltas.map((d) => {
    const k = Math.floor(density * d.length);
    const order = [...d.keys()].sort((x, y) => Math.abs(d[y]) - Math.abs(d[x]) || x - y);
    const out = new Float64Array(d.length);
    for (const i of order.slice(0, k)) out[i] = d[i];
    return out;
  });
  let conflicts = 0;
  let contested = 0;
  for (let k = 0; k < deltas[0].length; k++) {
    const signs = trimmed.map((d) => Math.sign(d[k])).filter((s) => s !== 0);
    if (signs.length >= 2) {
      contested++;
      if (new Set(signs).size > 1) conflicts++;
    }
  }
  return { conflicts, contested };
}

describe('task-vector analysis (streamed) against dense references', () => {
  let dir: string;
  const opened: Checkpoint[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lorafuse-analysis-'));
  });
  after(async () => {
    for (const c of opened) await c.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('names layers and trims like TIES', () => {
    assert.equal(layerOf('model.layers.12.self_attn.q_proj.weight'), 'model.layers.12');
    assert.equal(layerOf('vit.encoder.layer.3.output.dense.weight'), 'vit.encoder.layer.3');
    assert.equal(layerOf('classifier.weight'), 'other');
    assert.deepEqual([...trimToTopK(Float64Array.from([0.1, -3, 2, -0.5]), 0.5)], [0, -3, 2, 0]);
  });

  it('models: norms, cosines and per-layer sign conflicts match the flattened computation', async () => {
    const next = seeded(7);
    const shapes: Record<string, number[]> = {
      'model.embed.weight': [6, 4],
      'model.layers.0.proj.weight': [5, 3],
      'model.layers.0.proj.bias': [5],
      'model.layers.1.proj.weight': [5, 3],
      'classifier.weight': [3, 4],
    };
    const make = (offset: boolean) =>
      Object.fromEntries(
        Object.entries(shapes).map(([name, shape]) => {
          const numel = shape.reduce((a, b) => a * b, 1);
          return [name, { shape, data: randomArray(numel, next, offset ? 0.2 : 0) }];
        }),
      );
    const base = make(false);
    const inputs = [make(false), make(false), make(false)];
    for (const input of inputs) {
      for (const [name, t] of Object.entries(input)) {
        // fine-tuned = base + a sparse perturbation (zeros make "contested" differ from numel)
        t.data = Float32Array.from(t.data, (v, k) => base[name].data[k] + (Math.abs(v) < 0.1 ? 0 : v));
      }
    }
    inputs[2]['model.layers.1.proj.bias'] = { shape: [5], data: randomArray(5, next) }; // absent from base: ignored
    const baseCheckpoint = await writeCheckpoint(path.join(dir, 'base.safetensors'), base);
    const checkpoints = await Promise.all(
      inputs.map((t, i) => writeCheckpoint(path.join(dir, `m${i}.safetensors`), t)),
    );
    opened.push(baseCheckpoint, ...checkpoints);
    const density = 0.6;
    const result = await analyzeModels({
      base: baseCheckpoint,
      inputs: checkpoints.map((checkpoint, i) => ({ id: `m${i}`, checkpoint })),
      exclude: ['classifier'],
      options: { density },
    });
    const used = Object.keys(shapes).filter((n) => n !== 'classifier.weight');
    const deltaOf = (i: number, name: string) =>
      Float64Array.from(inputs[i][name].data, (v, k) => v - base[name].data[k]);
    const flat = inputs.map((_, i) => Float64Array.from(used.flatMap((name) => [...deltaOf(i, name)])));
    const cosine = naiveCosine(flat);
    for (let i = 0; i < 3; i++) {
      close(result.parameters.norms[i], Math.sqrt(flat[i].reduce((s, v) => s + v * v, 0)), `norm ${i}`);
      for (let j = 0; j < 3; j++) close(result.parameters.cosine[i][j], cosine[i][j], `cosine ${i},${j}`);
    }
    assert.deepEqual(
      result.skipped.map((s) => s.tensor),
      ['classifier.weight'],
    );
    const layers = new Map<string, { conflicts: number; contested: number }>();
    for (const name of used) {
      const counted = naiveConflicts(
        [0, 1, 2].map((i) => deltaOf(i, name)),
        density,
      );
      const layer = layerOf(name);
      const sum = layers.get(layer) ?? { conflicts: 0, contested: 0 };
      layers.set(layer, {
        conflicts: sum.conflicts + counted.conflicts,
        contested: sum.contested + counted.contested,
      });
    }
    assert.deepEqual(
      result.parameters.signConflict.map((r) => r.layer),
      ['other', 'model.layers.0', 'model.layers.1'],
    );
    for (const row of result.parameters.signConflict) {
      const expected = layers.get(row.layer)!;
      assert.equal(row.conflicts, expected.conflicts, row.layer);
      assert.equal(row.contested, expected.contested, row.layer);
      assert.ok(row.contested > 0 && row.conflicts > 0, `${row.layer} has conflicts to count`);
    }
  });

  it('adapters: delta-space cosines from factors equal those of dense ΔW; effective ranks equal a dense SVD', async () => {
    const next = seeded(11);
    const modules = ['model.layers.0.q_proj', 'model.layers.1.q_proj'];
    const out = 6;
    const inner = 5;
    const rank = 3;
    const alpha = 6;
    type Factors = Record<string, { a: Float32Array; b: Float32Array }>;
    const adapters: Factors[] = [0, 1, 2].map(() =>
      Object.fromEntries(
        modules.map((m) => [m, { a: randomArray(rank * inner, next), b: randomArray(out * rank, next) }]),
      ),
    );
    delete adapters[1][modules[1]]; // adapter 1 does not target layer 1
    // adapter 2 is an L-LoRA adapter with a non-zero B₀: its delta is s·[B₀A₀ + (B−B₀)A₀ + B₀(A−A₀)]
    const init: Factors = Object.fromEntries(
      modules.map((m) => [m, { a: randomArray(rank * inner, next), b: randomArray(out * rank, next) }]),
    );
    const inputs = [];
    for (const [i, factors] of adapters.entries()) {
      const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
      for (const [m, { a, b }] of Object.entries(factors)) {
        tensors[`base_model.model.${m}.lora_A.weight`] = { shape: [rank, inner], data: a };
        tensors[`base_model.model.${m}.lora_B.weight`] = { shape: [out, rank], data: b };
      }
      tensors['base_model.model.classifier.weight'] = {
        shape: [2, inner],
        data: randomArray(2 * inner, next),
      };
      const weights = await writeCheckpoint(path.join(dir, `a${i}.safetensors`), tensors);
      opened.push(weights);
      const input: Parameters<typeof analyzeAdapters>[0]['inputs'][number] = {
        id: `a${i}`,
        config: {
          peft_type: 'LORA',
          r: rank,
          lora_alpha: alpha,
          target_modules: ['q_proj'],
          modules_to_save: ['classifier'],
        },
        weights,
      };
      if (i === 2) {
        const initTensors: Record<string, { shape: number[]; data: Float32Array }> = {};
        for (const [m, { a, b }] of Object.entries(init)) {
          initTensors[`base_model.model.${m}.lora_A.weight`] = { shape: [rank, inner], data: a };
          initTensors[`base_model.model.${m}.lora_B.weight`] = { shape: [out, rank], data: b };
        }
        const initCheckpoint = await writeCheckpoint(path.join(dir, 'init.safetensors'), initTensors);
        opened.push(initCheckpoint);
        input.init = initCheckpoint;
        input.extras = { mode: 'llora' };
      }
      inputs.push(input);
    }
    const result = await analyzeAdapters({ modelType: 'llama', inputs });
    const s = alpha / rank;
    const matmul = (b: ArrayLike<number>, a: ArrayLike<number>, r: number) => {
      const m = new Float64Array(out * inner);
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inner; i++)
          for (let k = 0; k < r; k++) m[o * inner + i] += b[o * r + k] * a[k * inner + i];
      return m;
    };
    const denseDelta = (i: number, m: string): Float64Array => {
      const f = adapters[i][m];
      if (!f) return new Float64Array(out * inner);
      if (i !== 2) return matmul(f.b, f.a, rank).map((v) => s * v);
      const { a: a0, b: b0 } = init[m];
      const b0a0 = matmul(b0, a0, rank);
      const bMinus = matmul(
        Float64Array.from(f.b, (v, k) => v - b0[k]),
        a0,
        rank,
      );
      const aMinus = matmul(
        b0,
        Float64Array.from(f.a, (v, k) => v - a0[k]),
        rank,
      );
      return b0a0.map((v, k) => s * (v + bMinus[k] + aMinus[k]));
    };
    const flat = [0, 1, 2].map((i) => Float64Array.from(modules.flatMap((m) => [...denseDelta(i, m)])));
    const cosine = naiveCosine(flat);
    for (let i = 0; i < 3; i++) {
      close(result.delta!.norms[i], Math.sqrt(flat[i].reduce((acc, v) => acc + v * v, 0)), `delta norm ${i}`);
      for (let j = 0; j < 3; j++) close(result.delta!.cosine[i][j], cosine[i][j], `delta cosine ${i},${j}`);
    }
    // parameter space: factors minus the expansion point (zero for plain LoRA), zeros where a module is absent
    const paramFlat = [0, 1, 2].map((i) =>
      Float64Array.from(
        modules.flatMap((m) =>
          (['a', 'b'] as const).flatMap((side) => {
            const f = adapters[i][m];
            if (!f) return new Array(side === 'a' ? rank * inner : out * rank).fill(0);
            return [...f[side]].map((v, k) => v - (i === 2 ? init[m][side][k] : 0));
          }),
        ),
      ),
    );
    const paramCosine = naiveCosine(paramFlat);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++)
        close(result.parameters.cosine[i][j], paramCosine[i][j], `parameter cosine ${i},${j}`);
    assert.equal(result.effectiveRank!.length, 5);
    for (const row of result.effectiveRank!) {
      const i = Number(row.input.slice(1));
      const svd = jacobiSvd(fromArray(out, inner, denseDelta(i, row.module)));
      close(row.effectiveRank, effectiveRank(svd.s), `effective rank ${row.input} ${row.module}`, 1e-8);
      assert.equal(row.rank, rank);
      assert.ok(row.effectiveRank > 1 && row.effectiveRank <= (i === 2 ? 2 * rank : rank) + 1e-9);
    }
  });

  it('effective rank: 1 for rank one, r for equal singular values; inner product of orthogonal deltas is 0', () => {
    assert.equal(effectiveRank([3, 0, 0]), 1);
    close(effectiveRank([2, 2, 2, 2]), 4, 'equal');
    assert.equal(effectiveRank([0, 0]), 0);
    const x = factorsFrom('m', 1, 1, { shape: [2, 1], data: [1, 0] }, { shape: [1, 2], data: [1, 0] });
    const y = factorsFrom('m', 2, 1, { shape: [2, 1], data: [0, 1] }, { shape: [1, 2], data: [1, 0] });
    assert.equal(deltaInner(x, y), 0);
    assert.equal(deltaInner(x, x), 1);
    assert.equal(deltaInner(y, y), 4);
  });
});
