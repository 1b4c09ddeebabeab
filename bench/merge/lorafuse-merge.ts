// Child process of run.ts: one lorafuse merge through the library API (parseRecipe -> planMerge ->
// executeMerge), paths in the recipe resolved against the recipe's folder, as the CLI does.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  closePlan,
  executeMerge,
  type InputResolver,
  parseRecipe,
  planMerge,
} from '../../src/merge/index.ts';
import { loadMergeWorkers } from '../../src/config.ts';
import { Checkpoint } from '../../src/tensors/index.ts';

async function main(): Promise<void> {
  const [recipePath, outDir] = process.argv.slice(2);
  if (!recipePath || !outDir) throw new Error('usage: lorafuse-merge.ts RECIPE OUT_DIR');
  const started = performance.now();
  const recipe = parseRecipe(await readFile(recipePath, 'utf8'));
  const recipeDir = path.dirname(path.resolve(recipePath));
  const resolver: InputResolver = {
    async openModel(ref) {
      const dir = path.resolve(recipeDir, ref);
      const configPath = path.join(dir, 'config.json');
      const config = existsSync(configPath) ? JSON.parse(await readFile(configPath, 'utf8')) : undefined;
      return { checkpoint: await Checkpoint.openFolder(dir), config };
    },
    async openAdapter(ref) {
      throw new Error(`the merge benchmark uses full models only (got adapter ${ref})`);
    },
  };
  const plan = await planMerge(recipe, resolver);
  try {
    const result = await executeMerge(plan, { outDir, workers: loadMergeWorkers() });
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`${JSON.stringify({ seconds, files: result.files })}\n`);
  } finally {
    await closePlan(plan);
  }
}

await main();
