// `lorafuse merge RECIPE --out PATH [--dry-run] [--max-shard-size 5GB]`: runs a mergekit-format
// recipe on local files. Paths in the recipe are relative to the recipe file; a model is a folder
// (model.safetensors or shards + index, config.json) or a single .safetensors file (config.json
// beside it is used when present); an adapter is a PEFT folder. Ctrl-C aborts and removes the output.
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadMergeWorkers } from '../config.ts';
import {
  AdapterError,
  type AdapterSource,
  closePlan,
  describePlan,
  executeMerge,
  type InputResolver,
  MergeCancelledError,
  MergePlanError,
  type ModelSource,
  parseRecipe,
  parseSize,
  planMerge,
  RecipeError,
} from '../merge/index.ts';
import { Checkpoint, JsonLimitError, parseBoundedJson, SafetensorsError } from '../tensors/index.ts';
import { type CommandSpec, prepareCommand } from './args.ts';

export const MERGE_SPEC: CommandSpec = {
  command: 'merge',
  summary:
    'Runs a mergekit-format recipe on local files: models (folders or .safetensors files) and PEFT adapter folders.',
  positionals: [
    {
      name: 'RECIPE',
      path: 'file',
      description: 'a mergekit-format YAML (or JSON) recipe; paths in it are relative to it',
    },
  ],
  options: {
    out: {
      type: 'string',
      short: 'o',
      value: 'PATH',
      path: 'new-path',
      description: 'the output folder (created; must be empty when it exists); required unless --dry-run',
    },
    'dry-run': {
      type: 'boolean',
      description: 'print the plan (per-tensor parameters, output layout, memory) and exit',
      default: 'off',
    },
    'max-shard-size': {
      type: 'string',
      value: 'SIZE',
      description:
        "shard the output above this size (500MB, 2GiB, or bytes); overrides the recipe's max_shard_size",
      default: '5GB',
    },
  },
};

async function readJsonIfPresent(file: string): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(file)) return undefined;
  const value = parseBoundedJson(await readFile(file, 'utf8'));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${file} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Resolves recipe references to files relative to the recipe's folder. */
export function fileResolver(recipeDir: string): InputResolver {
  return {
    async openModel(ref: string): Promise<ModelSource> {
      const target = path.resolve(recipeDir, ref);
      if (!existsSync(target)) throw new Error(`${target} does not exist`);
      if (statSync(target).isDirectory()) {
        const checkpoint = await Checkpoint.openFolder(target);
        return { checkpoint, config: await readJsonIfPresent(path.join(target, 'config.json')) };
      }
      const checkpoint = await Checkpoint.openFiles({ 'model.safetensors': target });
      return { checkpoint, config: await readJsonIfPresent(path.join(path.dirname(target), 'config.json')) };
    },
    async openAdapter(ref: string): Promise<AdapterSource> {
      const dir = path.resolve(recipeDir, ref);
      if (!existsSync(dir) || !statSync(dir).isDirectory())
        throw new Error(`${dir} is not an adapter folder`);
      const config = await readJsonIfPresent(path.join(dir, 'adapter_config.json'));
      if (!config) throw new Error(`${dir} has no adapter_config.json`);
      const weights = await Checkpoint.openFolder(dir, 'adapter_model');
      const initFile = path.join(dir, 'lorafuse_init.safetensors');
      const init = existsSync(initFile)
        ? await Checkpoint.openFiles({ 'model.safetensors': initFile })
        : undefined;
      return { config, weights, init, extras: await readJsonIfPresent(path.join(dir, 'lorafuse.json')) };
    },
  };
}

function isUserError(error: unknown): boolean {
  return (
    error instanceof RecipeError ||
    error instanceof MergePlanError ||
    error instanceof AdapterError ||
    error instanceof SafetensorsError ||
    error instanceof JsonLimitError ||
    error instanceof SyntaxError
  );
}

export async function runMergeCommand(argv: string[]): Promise<number> {
  const prepared = prepareCommand(MERGE_SPEC, argv);
  if (typeof prepared === 'number') return prepared;
  const [recipePath] = prepared.positionals;
  const values = prepared.values as { out?: string; 'dry-run'?: boolean; 'max-shard-size'?: string };
  if (!values.out && !values['dry-run']) {
    process.stderr.write(
      'lorafuse merge: --out is required (or --dry-run)\n(lorafuse merge --help for every option)\n',
    );
    return 2;
  }
  let maxShardBytes: number | undefined;
  const mergeWorkers = loadMergeWorkers(); // a ConfigError: main prints it and exits 2
  try {
    if (values['max-shard-size']) maxShardBytes = parseSize(values['max-shard-size']);
  } catch (error) {
    process.stderr.write(`lorafuse merge: --max-shard-size: ${(error as Error).message}\n`);
    return 2;
  }

  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write('\ninterrupted: stopping the merge and removing its output\n');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    // Local files on the user's own machine: no cap on the number of inputs (size and depth still apply).
    const recipe = parseRecipe(await readFile(recipePath, 'utf8'), { maxModels: Number.POSITIVE_INFINITY });
    const plan = await planMerge(recipe, fileResolver(path.dirname(path.resolve(recipePath))));
    try {
      if (values['dry-run']) {
        process.stdout.write(describePlan(plan));
        return 0;
      }
      const outDir = path.resolve(values.out!);
      const started = Date.now();
      const result = await executeMerge(plan, {
        outDir,
        signal: controller.signal,
        maxShardBytes: maxShardBytes ?? recipe.max_shard_size,
        workers: mergeWorkers,
        onProgress: (p) => {
          if (process.stderr.isTTY) process.stderr.write(`\r${p.phase} ${p.tensorsDone}/${p.tensorsTotal}`);
        },
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`wrote ${result.kind} to ${outDir} in ${seconds}s: ${result.files.join(', ')}\n`);
      for (const warning of plan.warnings) process.stdout.write(`warning: ${warning}\n`);
      return 0;
    } finally {
      await closePlan(plan);
    }
  } catch (error) {
    if (error instanceof MergeCancelledError) {
      process.stderr.write('merge cancelled; nothing was left in the output folder\n');
      return 130;
    }
    if (isUserError(error)) {
      process.stderr.write(`error: ${(error as Error).message}\n`);
      return 1;
    }
    const missing = error as NodeJS.ErrnoException;
    if (missing.code === 'ENOENT' || missing.code === 'EISDIR' || missing.code === 'ENOTDIR') {
      const what = missing.code === 'EISDIR' ? 'is a folder where a file was expected' : 'does not exist';
      process.stderr.write(`error: ${missing.path ?? 'a file'} ${what}\n`);
      return 1;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
