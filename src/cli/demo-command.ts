// `lorafuse demo merge` (npm run demo:merge): the merge walkthrough on this machine. Starts the embedded
// stack (private Redis, API on a free port, one sandboxed merge worker), uploads four small
// checkpoints over HTTP, runs a task_arithmetic and a ties merge through the queue, follows each
// job, downloads the result, prints its digest and tensors, checks the arithmetic, and shuts down.
import { DEMO_USAGE } from './usage.ts';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config.ts';
import type { JobView, MergeJobResult } from '../queue/index.ts';
import { SafetensorsFile } from '../tensors/index.ts';
import { ApiClient } from './api-client.ts';
import { DEMO_VARIANTS, type DemoTensor, demoBase, demoVariant, writeDemoModel } from './demo-checkpoints.ts';
import { type DevStack, startDevStack } from './dev-command.ts';
import { RedisServerMissingError } from './embedded-redis.ts';

const say = (line = '') => process.stdout.write(`${line}\n`);

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(2)}s`;
}

/** Polls the job and prints each change of state or progress until it ends. */
async function follow(client: ApiClient, id: string): Promise<JobView> {
  const started = Date.now();
  let last = '';
  for (;;) {
    const job = await client.job(id);
    const progress = job.progress as { phase?: string; tensorsDone?: number; tensorsTotal?: number } | null;
    const detail =
      job.state === 'active' && progress
        ? `${progress.phase}${progress.tensorsTotal ? ` ${progress.tensorsDone}/${progress.tensorsTotal} tensors` : ''}`
        : '';
    const line = `${job.state.padEnd(9)} ${detail}`.trimEnd();
    if (line !== last) {
      say(`     [${seconds(started).padStart(6)}] ${line}`);
      last = line;
    }
    if (job.state === 'completed' || job.state === 'failed' || job.state === 'cancelled') return job;
    if (Date.now() - started > 60_000) throw new Error(`job ${id} did not finish within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function checksum(values: Float32Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum;
}

/** Downloads the merged model and prints its digest and every tensor; returns the tensors. */
async function showResult(client: ApiClient, id: string, outDir: string): Promise<Map<string, Float32Array>> {
  const record = await client.model(id);
  const bytes = await client.downloadModelFile(id, 'model.safetensors');
  const file = path.join(outDir, `${id}.safetensors`);
  await writeFile(file, bytes);
  say(`     GET /v1/models/${id}/files/model.safetensors: ${bytes.length} bytes`);
  say(`     sha256 ${createHash('sha256').update(bytes).digest('hex')}`);
  say(
    `     ${record.tensorCount} tensors, ${record.parameterCount} parameters, lineage: job ${record.lineage?.jobId}`,
  );
  const reader = await SafetensorsFile.open(file);
  const tensors = new Map<string, Float32Array>();
  try {
    say(
      `     ${'tensor'.padEnd(48)} ${'dtype'.padEnd(5)} ${'shape'.padEnd(9)} ${'sum'.padStart(10)}  first values`,
    );
    for (const name of reader.names()) {
      const info = reader.info(name);
      const values = await reader.readFloat32(name);
      tensors.set(name, values);
      const first = [...values.slice(0, 3)].map((v) => v.toFixed(4)).join(' ');
      say(
        `     ${name.padEnd(48)} ${info.dtype.padEnd(5)} ${`[${info.shape.join(',')}]`.padEnd(9)} ${checksum(values).toFixed(4).padStart(10)}  ${first}`,
      );
    }
  } finally {
    await reader.close();
  }
  return tensors;
}

/** base + λ·Σ wᵢ(θᵢ − base) computed here in float64: what task_arithmetic must give. */
function largestDeviation(
  merged: Map<string, Float32Array>,
  base: DemoTensor[],
  variants: DemoTensor[][],
  lambda: number,
): number {
  let worst = 0;
  base.forEach((tensor, t) => {
    const got = merged.get(tensor.name);
    if (!got) throw new Error(`the result lacks ${tensor.name}`);
    for (let i = 0; i < tensor.data.length; i++) {
      let delta = 0;
      for (const variant of variants) delta += variant[t].data[i] - tensor.data[i];
      worst = Math.max(worst, Math.abs(got[i] - (tensor.data[i] + lambda * delta)));
    }
  });
  return worst;
}

async function runMerge(client: ApiClient, title: string, recipe: Record<string, unknown>): Promise<string> {
  say(`     POST /v1/merges  ${title}`);
  const queued = await client.submitMerge(recipe);
  say(`     job ${queued.id} ${queued.state}`);
  const done = await follow(client, queued.id);
  if (done.state !== 'completed') {
    throw new Error(`job ${done.id} ended ${done.state}: ${done.error?.type}: ${done.error?.message}`);
  }
  const result = done.result as MergeJobResult;
  say(`     result: ${result.artifact.kind} ${result.artifact.id}`);
  return result.artifact.id;
}

export async function runDemo(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(DEMO_USAGE);
    return 0;
  }
  const keep = argv.includes('--keep');
  const started = Date.now();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'lorafuse-demo-'));
  // The demo owns its stack: a free port on loopback, its own data dir and queue prefix.
  const config = loadConfig({
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    LORAFUSE_DATA_DIR: dataDir,
    LORAFUSE_QUEUE_PREFIX: 'lorafuse-demo',
  });
  say('lorafuse demo: the whole service on this machine (API + Redis queue + sandboxed merge worker)');
  say(`  data dir  ${dataDir}${keep ? '' : ' (removed at the end; --keep keeps it)'}`);
  let stack: DevStack | undefined;
  try {
    stack = await startDevStack(config, {
      quiet: true,
      onRedis: (url, embedded) =>
        say(`  redis     ${embedded ? `embedded redis-server at ${url} (AOF on, noeviction)` : 'REDIS_URL'}`),
    });
    say(`  api       ${stack.api.url}  (OpenAPI docs at ${stack.api.url}/docs)`);
    if (stack.apiKey) say(`  api key   ${stack.apiKey}  (admin of project default, made for this run)`);
    const client = new ApiClient(stack.api.url, stack.apiKey);

    say(
      '\n1. Four small checkpoints (Llama-shaped: 2 layers, hidden 64): a base and three fine-tuned variants',
    );
    const base = demoBase();
    const variants = DEMO_VARIANTS.map((_, index) => demoVariant(base, index));
    const ids: Record<string, string> = {};
    for (const [name, tensors] of [
      ['base', base] as const,
      ...DEMO_VARIANTS.map((v, i) => [v, variants[i]] as const),
    ]) {
      const dir = await writeDemoModel(path.join(dataDir, 'inputs', name), tensors);
      const record = await client.uploadModel(dir, ['config.json', 'model.safetensors']);
      ids[name] = record.id;
      say(
        `   POST /v1/models  ${name.padEnd(5)} -> ${record.id}  (${record.tensorCount} tensors, ${record.parameterCount} parameters, ${record.dtypes.join(',')})`,
      );
    }

    const lambda = 0.7;
    say(`\n2. task_arithmetic: base + ${lambda} x sum of the three task vectors`);
    const taskArithmetic = await runMerge(client, 'merge_method: task_arithmetic', {
      merge_method: 'task_arithmetic',
      base_model: ids.base,
      models: DEMO_VARIANTS.map((name) => ({ model: ids[name], parameters: { weight: 1.0 } })),
      parameters: { lambda },
      dtype: 'float32',
    });
    const resultsDir = path.join(dataDir, 'results');
    await mkdir(resultsDir, { recursive: true });
    const merged = await showResult(client, taskArithmetic, resultsDir);
    const deviation = largestDeviation(merged, base, variants, lambda);
    say(
      `     check: max |result - (base + ${lambda} x sum(variant - base))| = ${deviation.toExponential(2)}`,
    );
    if (deviation > 1e-5) throw new Error(`task_arithmetic result deviates by ${deviation}`);

    say('\n3. ties: top-50% of each task vector, sign election, disjoint mean');
    const ties = await runMerge(client, 'merge_method: ties (density 0.5)', {
      merge_method: 'ties',
      base_model: ids.base,
      models: DEMO_VARIANTS.map((name) => ({ model: ids[name], parameters: { weight: 1.0, density: 0.5 } })),
      parameters: { lambda: 1.0 },
      dtype: 'float32',
    });
    await showResult(client, ties, resultsDir);

    say('\n4. Shutting down (worker, API, Redis)');
    await stack.stop();
    stack = undefined;
    say(`lorafuse demo: done in ${seconds(started)}`);
    return 0;
  } catch (error) {
    if (error instanceof RedisServerMissingError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    process.stderr.write(`lorafuse demo failed: ${(error as Error).stack ?? error}\n`);
    return 1;
  } finally {
    await stack?.stop().catch(() => undefined);
    if (!keep) await rm(dataDir, { recursive: true, force: true });
  }
}
