// `lorafuse merge RECIPE --out PATH [--dry-run] [--max-shard-size 5GB]`: runs a mergekit-format
// recipe on local files. Paths in the recipe are relative to the recipe file; a model is a folder
// (model.safetensors or shards + index, config.json) or a single .safetensors file (config.json
// beside it is used when present); an adapter is a PEFT folder. Ctrl-C aborts and removes the output.
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
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
  planMerge,
  RecipeError,
} from '../merge/index.ts';
import { Checkpoint, JsonLimitError, parseBoundedJson, SafetensorsError } from '../tensors/index.ts';

const USAGE = `usage: lorafuse merge RECIPE --out PATH [--dry-run] [--max-shard-size 5GB]

  RECIPE            a mergekit-format YAML (or JSON) recipe; paths in it are relative to it
  --out, -o PATH    the output folder (created; must be empty when it exists)
  --dry-run         print the plan (per-tensor parameters, output layout, memory) and exit
  --max-shard-size  shard the output above this size (5GB default; 500MB, 2GiB, or bytes)
`;

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
};

/** "5GB" -> 5e9 (decimal units as transformers' max_shard_size; KiB/MiB/GiB binary). */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  const unit = match ? SIZE_UNITS[match[2].toUpperCase()] : undefined;
  if (!match || unit === undefined) throw new Error(`invalid size "${text}" (e.g. 5GB, 500MB, 2GiB)`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (!(bytes > 0)) throw new Error(`size "${text}" must be positive`);
  return bytes;
}

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
  let args: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    args = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [recipePath, ...extra] = args.positionals;
  if (!recipePath || extra.length > 0 || (!args.values.out && !args.values['dry-run'])) {
    process.stderr.write(USAGE);
    return 2;
  }
  let maxShardBytes: number | undefined;
  try {
    if (args.values['max-shard-size']) maxShardBytes = parseSize(args.values['max-shard-size']);
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
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
      if (args.values['dry-run']) {
        process.stdout.write(describePlan(plan));
        return 0;
      }
      const outDir = path.resolve(args.values.out!);
      const started = Date.now();
      const result = await executeMerge(plan, {
        outDir,
        signal: controller.signal,
        maxShardBytes,
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
    if (isUserError(error) || (error as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`error: ${(error as Error).message}\n`);
      return 1;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

const OPTIONS = {
  out: { type: 'string', short: 'o' },
  'dry-run': { type: 'boolean' },
  'max-shard-size': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
