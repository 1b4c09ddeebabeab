// Makes docs/analysis-report.png, the README's picture of a real report: starts the whole service on this
// machine (private redis-server, API, workers), uploads a small MLP base and MNIST-derived tasks (parity and
// magnitude of real digits from the `mnist` package), fine-tunes one LoRA adapter per task with the service's own
// fine-tune jobs, runs POST /v1/analyses with the default 21×21 disentanglement grid, and screenshots the
// report.html it wrote in headless Chromium (Debian's package, driven by playwright-core).
// Usage: tsx scripts/report-screenshot.ts [OUT.png]   (needs redis-server and /usr/bin/chromium)
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { chromium } from 'playwright-core';
import { startDevStack } from '../src/cli/dev-command.ts';
import { loadConfig } from '../src/config.ts';
import { buildMnistDataset, type MnistTask } from '../src/eval/datasets/mnist.ts';
import { gaussian, seededStream } from '../src/merge/linalg/seeded-random.ts';
import { writeDataset } from '../src/model/train/dataset.ts';
import type { AnalyzeJobResult, FinetuneJobResult, JobView } from '../src/queue/index.ts';
import { ArtifactStore, REPORT_HTML } from '../src/store/index.ts';
import { writeSafetensors } from '../src/tensors/index.ts';

const out = path.resolve(process.argv[2] ?? 'docs/analysis-report.png');
const work = await mkdtemp(path.join(os.tmpdir(), 'lorafuse-report-shot-'));
const config = loadConfig({
  ...process.env,
  PORT: '0',
  HOST: '127.0.0.1',
  LORAFUSE_DATA_DIR: path.join(work, 'data'),
  LORAFUSE_QUEUE_PREFIX: 'lorafuse-report-shot',
});
process.env.LORAFUSE_BACKEND ??= 'wasm'; // the workers' sandboxed children inherit it
const stack = await startDevStack(config, { quiet: true });
const api = stack.api.url;
const say = (line: string) => process.stdout.write(`${line}\n`);

async function post(route: string, body: unknown): Promise<JobView> {
  const response = await fetch(`${api}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 202) throw new Error(`${route}: ${response.status} ${await response.text()}`);
  return (await response.json()) as JobView;
}

async function upload(route: string, files: Record<string, string>): Promise<string> {
  const form = new FormData();
  for (const [name, file] of Object.entries(files)) form.append(name, new Blob([await readFile(file)]), name);
  const response = await fetch(`${api}${route}`, { method: 'POST', body: form });
  if (response.status !== 201) throw new Error(`${route}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

async function finished(job: JobView): Promise<JobView> {
  for (;;) {
    const view = (await (await fetch(`${api}/v1/jobs/${job.id}`)).json()) as JobView;
    if (view.state === 'completed') return view;
    if (view.state === 'failed' || view.state === 'cancelled')
      throw new Error(`${job.id}: ${JSON.stringify(view.error)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A randomly initialised MLP for 28×28 digits with a 2-class head (He-normal, seeded). */
async function writeBaseModel(dir: string): Promise<void> {
  const sizes = [784, 64, 32];
  const stream = seededStream(2026);
  const tensors: Array<{ name: string; dtype: 'F32'; shape: number[]; data: Float32Array }> = [];
  const layer = (name: string, outF: number, inF: number) => {
    const scale = Math.sqrt(2 / inF);
    tensors.push(
      {
        name: `${name}.weight`,
        dtype: 'F32' as const,
        shape: [outF, inF],
        data: Float32Array.from({ length: outF * inF }, () => gaussian(stream) * scale),
      },
      { name: `${name}.bias`, dtype: 'F32' as const, shape: [outF], data: new Float32Array(outF) },
    );
  };
  for (let i = 0; i + 1 < sizes.length; i++) layer(`layers.${i}`, sizes[i + 1], sizes[i]);
  layer('classifier', 2, sizes[sizes.length - 1]);
  await mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'mlp',
      input_size: 784,
      hidden_sizes: [64, 32],
      num_labels: 2,
      hidden_act: 'relu',
    }),
  );
}

try {
  await writeBaseModel(path.join(work, 'base'));
  const base = await upload('/v1/models', {
    'config.json': path.join(work, 'base', 'config.json'),
    'model.safetensors': path.join(work, 'base', 'model.safetensors'),
  });
  say(`base model ${base}`);
  const tasks: MnistTask[] = ['parity', 'magnitude'];
  const adapters: string[] = [];
  const tests: string[] = [];
  for (const task of tasks) {
    const ids: Record<string, string> = {};
    for (const split of ['train', 'test'] as const) {
      const file = path.join(work, `${task}-${split}.safetensors`);
      const dataset = buildMnistDataset({ task, split, perDigit: split === 'train' ? 120 : 40 });
      await writeDataset(file, split === 'test' ? { ...dataset, split: 'validation' } : dataset);
      ids[split] = await upload('/v1/datasets', { 'dataset.safetensors': file });
    }
    tests.push(ids.test);
    const job = await finished(
      await post('/v1/finetunes', {
        model: base,
        dataset: ids.train,
        mode: 'lora',
        rank: 4,
        steps: 300,
        batch_size: 32,
        learning_rate: 0.01,
        seed: 7,
      }),
    );
    const result = job.result as FinetuneJobResult;
    adapters.push(result.artifact.id);
    say(`mnist-${task}: adapter ${result.artifact.id}, validation accuracy ${result.valAccuracy}`);
  }
  const analysis = await finished(
    await post('/v1/analyses', {
      base_model: base,
      adapters,
      disentanglement: {
        tasks: tasks.map((task, i) => ({ input: adapters[i], dataset: tests[i], name: `mnist-${task}` })),
        max_examples: 200,
      },
    }),
  );
  const result = analysis.result as AnalyzeJobResult;
  say(`analysis ${analysis.id}: ${result.summary}`);
  const redis = new Redis(stack.redisUrl);
  const store = new ArtifactStore({ redis, dataDir: config.dataDir, prefix: config.queuePrefix });
  const record = await store.get(result.artifact.id);
  redis.disconnect();
  if (!record) throw new Error(`report ${result.artifact.id} not found`);
  const pageFile = path.join(work, 'report.html');
  await writeFile(pageFile, await readFile(store.filePaths(record)[REPORT_HTML]));
  const profile = await mkdtemp(path.join(os.tmpdir(), 'lorafuse-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    headless: true,
    viewport: { width: 1150, height: 2900 },
  });
  try {
    const page = await browser.newPage();
    await page.goto(`file://${pageFile}`);
    await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1150, height: 2900 } });
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  }
  say(`wrote ${out}`);
} finally {
  await stack.stop();
  await rm(work, { recursive: true, force: true });
}
