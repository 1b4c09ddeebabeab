// Large elementwise tensors go through the merge in row pieces (pipeline.ts): the output bytes must be
// exactly those of merging each tensor whole, inline or over worker threads, across shards, for
// merges linear in their inputs and for copies; methods with whole-tensor statistics (ties) are never
// split (a split top-k would change the bytes, so comparing them catches it).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileResolver } from '../../src/cli/merge-command.ts';
import { closePlan, executeMerge, parseRecipe, planMerge } from '../../src/merge/index.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { tempDir } from '../helpers/redis.ts';

let dir: ReturnType<typeof tempDir>;
// [64, 48] and [96, 48] split into pieces of 2 rows at 100 elements; [300] into 100-element ranges;
// [48] stays whole; [7, 33] splits into 3-row pieces with a short last one.
const SHAPES: Array<[string, number[]]> = [
  ['model.embed_tokens.weight', [64, 48]],
  ['model.layers.0.input_layernorm.weight', [48]],
  ['model.layers.0.mlp.up_proj.weight', [96, 48]],
  ['model.layers.0.odd.weight', [7, 33]],
  ['model.norm.weight', [300]],
  ['lm_head.weight', [64, 48]],
];

before(async () => {
  dir = tempDir('lorafuse-pieces');
  for (const [m, file] of ['base', 'm0', 'm1', 'm2'].entries()) {
    // the base is F32 (so copies to bfloat16 convert), the fine-tunes BF16 with NaN and Inf here and there
    await writeSafetensors(
      path.join(dir.dir, `${file}.safetensors`),
      SHAPES.map(([name, shape]) => {
        const n = shape.reduce((a, b) => a * b);
        if (m === 0) {
          return {
            name,
            dtype: 'F32' as const,
            shape,
            data: Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + name.length) * 0.05),
          };
        }
        return {
          name,
          dtype: 'BF16' as const,
          shape,
          data: Uint16Array.from({ length: n }, (_, i) =>
            i % 997 === 5 && m === 2 ? 0x7fc0 : 0x3c00 + ((i * (m + 3) * 2654435761) >>> 24),
          ),
        };
      }),
    );
  }
});
after(() => dir.remove());

let runs = 0;

interface Run {
  files: Map<string, Buffer>;
  progress: number[];
  nonFinite: unknown;
}

async function merge(
  recipe: Record<string, unknown>,
  workers: number,
  pieceElements: number,
  maxShardBytes?: number,
): Promise<Run> {
  const plan = await planMerge(parseRecipe(recipe), fileResolver(dir.dir));
  const outDir = path.join(
    dir.dir,
    `${recipe.merge_method}-${recipe.out_dtype}-${workers}-${pieceElements}-${maxShardBytes}-${runs++}`,
  );
  const progress: number[] = [];
  try {
    const result = await executeMerge(plan, {
      outDir,
      workers,
      pieceElements,
      maxShardBytes,
      onProgress: (p) => progress.push(p.tensorsDone),
    });
    const files = new Map(
      readdirSync(outDir)
        .filter((f) => f.endsWith('.safetensors') || f.endsWith('.json'))
        .map((f) => [f, readFileSync(path.join(outDir, f))]),
    );
    return { files, progress, nonFinite: result.diagnostics?.nonFiniteValues };
  } finally {
    await closePlan(plan);
  }
}

function recipeFor(method: string, outDtype: string): Record<string, unknown> {
  const withBase = method !== 'linear' && method !== 'passthrough';
  const models = method === 'passthrough' ? ['base'] : ['m0', 'm1', 'm2'];
  return {
    merge_method: method,
    ...(withBase ? { base_model: 'base.safetensors' } : {}),
    models: models.map((m, i) => ({
      model: `${m}.safetensors`,
      parameters: method === 'passthrough' ? {} : { weight: 0.5 + i * 0.2, density: 0.4 },
    })),
    out_dtype: outDtype,
    seed: 3,
  };
}

const WHOLE = Number.MAX_SAFE_INTEGER;

function assertSameFiles(got: Run, want: Run, label: string) {
  assert.deepEqual([...got.files.keys()].sort(), [...want.files.keys()].sort(), label);
  for (const [file, bytes] of want.files)
    assert.ok(got.files.get(file)!.equals(bytes), `${label}: ${file} differs from the whole-tensor merge`);
}

test('row pieces give the bytes of whole tensors, inline and over workers, for every dtype', async () => {
  for (const method of ['task_arithmetic', 'linear', 'passthrough', 'ties']) {
    for (const outDtype of ['bfloat16', 'float32']) {
      const recipe = recipeFor(method, outDtype);
      const whole = await merge(recipe, 0, WHOLE);
      for (const workers of [0, 2]) {
        const pieces = await merge(recipe, workers, 100);
        const label = `${method} → ${outDtype}, ${workers} workers`;
        assertSameFiles(pieces, whole, label);
        // progress counts tensors, not pieces
        assert.equal(pieces.progress.at(-1), SHAPES.length, label);
        assert.deepEqual(pieces.nonFinite, whole.nonFinite, label);
      }
    }
  }
});

test('the non-finite count of a tensor in pieces adds up over its pieces', async () => {
  const run = await merge(recipeFor('task_arithmetic', 'float32'), 2, 100);
  // m2 holds a NaN at every index ≡ 5 (mod 997): the embeddings (3072 values) have 4, norm (300) 1
  const counts = run.nonFinite as Record<string, number>;
  assert.equal(counts['model.embed_tokens.weight'], 4);
  assert.equal(counts['model.norm.weight'], 1);
  assert.equal(counts['model.layers.0.mlp.up_proj.weight'], 5);
});

test('a tensor in pieces may open a new shard, and the shards match the whole-tensor merge', async () => {
  const recipe = recipeFor('task_arithmetic', 'bfloat16');
  const whole = await merge(recipe, 0, WHOLE, 8000);
  const pieces = await merge(recipe, 2, 100, 8000);
  assert.ok(whole.files.size > 2, 'the cap gives several shards and an index');
  assertSameFiles(pieces, whole, 'sharded');
});
