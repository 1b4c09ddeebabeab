// `npm run bench:merge`: lorafuse's streamed merge against a PyTorch reference of the same per-tensor
// algorithm, on synthetic BF16 checkpoints (a base and three fine-tunes, ~0.5B parameters each by
// default). Prints wall time, input MB/s, peak RSS, the ratios and the I/O floor.
//
//   npm run bench:merge -- --params 50e6 --reps 3 --methods ties,dare_ties
//   BENCH_PARAMS=50e6 BENCH_REPS=3 npm run bench:merge

import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compareOutputs } from './compare-outputs.ts';
import { type Measurement, measure } from './measure.ts';
import { ensureBenchModels } from './synthetic-model.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const METHODS = ['task_arithmetic', 'ties', 'dare_ties'] as const;
const TARGETS = { throughputRatio: 1.0, floorRatio: 2.0, peakRssBytes: 1.5e9 };

const { values: flags } = parseArgs({
  options: {
    params: { type: 'string', default: process.env.BENCH_PARAMS ?? '5e8' },
    reps: { type: 'string', default: process.env.BENCH_REPS ?? '1' },
    methods: { type: 'string', default: process.env.BENCH_METHODS ?? METHODS.join(',') },
    data: { type: 'string', default: process.env.BENCH_DATA ?? path.join(repoRoot, '.bench-data') },
    weight: { type: 'string', default: '0.4' },
    density: { type: 'string', default: '0.2' },
    python: { type: 'string', default: process.env.PYTHON ?? 'python3' },
    'no-compare': { type: 'boolean', default: false },
    /** cold: evict the input files from the page cache before every run (floor included); warm: leave them. */
    cache: { type: 'string', default: process.env.BENCH_CACHE ?? 'cold' },
  },
});

const params = Number(flags.params);
const reps = Math.max(1, Math.trunc(Number(flags.reps)));
const methods = flags.methods.split(',').map((m) => m.trim());
const weight = Number(flags.weight);
const density = Number(flags.density);
if (flags.cache !== 'cold' && flags.cache !== 'warm')
  throw new Error(`--cache ${flags.cache}: use cold or warm`);
if (!(params > 0)) throw new Error(`--params ${flags.params} is not a positive number`);
for (const m of methods)
  if (!(METHODS as readonly string[]).includes(m)) throw new Error(`unknown method ${m}`);

const log = (line: string) => process.stdout.write(`${line}\n`);
const mb = (bytes: number) => bytes / 1e6;
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

function torchAvailable(): boolean {
  const probe = spawnSync(flags.python, ['-c', 'import torch, safetensors'], { stdio: 'ignore' });
  return probe.status === 0;
}

/** Drops the files' pages from the page cache (GNU dd's nocache advice), so the next read goes to disk. */
function evictFromCache(files: string[]): void {
  if (flags.cache !== 'cold') return;
  for (const file of files) {
    const result = spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
    if (result.status !== 0) throw new Error(`could not evict ${file} from the page cache: ${result.stderr}`);
  }
}

async function safetensorsFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.safetensors')).map((f) => path.join(dir, f));
}

function recipeYaml(method: string, base: string, models: string[]): string {
  const parameters =
    method === 'task_arithmetic' ? `{weight: ${weight}}` : `{weight: ${weight}, density: ${density}}`;
  return [
    `merge_method: ${method}`,
    `base_model: ${JSON.stringify(base)}`,
    'models:',
    ...models.map((m) => `  - model: ${JSON.stringify(m)}\n    parameters: ${parameters}`),
    'dtype: float32',
    'out_dtype: bfloat16',
    'seed: 0',
    '',
  ].join('\n');
}

interface Row {
  method: string;
  tool: 'lorafuse' | 'reference';
  runs: Measurement[];
}

async function main(): Promise<void> {
  const models = await ensureBenchModels(flags.data, params, log);
  const inputFiles = (await Promise.all([models.base, ...models.finetuned].map(safetensorsFiles))).flat();
  const inputBytes = inputFiles.reduce((sum, f) => sum + statSync(f).size, 0);
  const hasTorch = torchAvailable();
  log(
    `models: ${(models.parameters / 1e6).toFixed(1)}M parameters each (BF16), base + ${models.finetuned.length} fine-tunes, ` +
      `${mb(inputBytes).toFixed(0)} MB of input per merge; weight ${weight}, density ${density}; ${reps} rep(s); ${flags.cache} page cache`,
  );
  if (!hasTorch) {
    log(
      `reference skipped: '${flags.python} -c "import torch, safetensors"' failed. Install with ` +
        `'apt-get install python3-torch' or 'pip install torch safetensors' (CPU wheels are enough).`,
    );
  }

  const workDir = path.join(models.root, 'runs');
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });

  // warm the page cache so that every tool (and the floor) reads from the same state
  await measure(process.execPath, [
    '--import',
    'tsx',
    path.join(repoRoot, 'bench/merge/read-floor.ts'),
    ...inputFiles,
  ]);
  const floorRuns: Measurement[] = [];
  for (let r = 0; r < reps; r++) {
    floorRuns.push(
      await measure(process.execPath, [
        '--import',
        'tsx',
        path.join(repoRoot, 'bench/merge/read-floor.ts'),
        ...inputFiles,
      ]),
    );
  }
  // wall time of a child process, like the merges it is compared with
  const floorSeconds = median(floorRuns.map((m) => m.wallSeconds));

  const rows: Row[] = [];
  for (const method of methods) {
    const recipePath = path.join(workDir, `${method}.yaml`);
    await writeFile(recipePath, recipeYaml(method, models.base, models.finetuned));
    const lorafuse: Row = { method, tool: 'lorafuse', runs: [] };
    const reference: Row = { method, tool: 'reference', runs: [] };
    for (let r = 0; r < reps; r++) {
      const keep = r === 0 && !flags['no-compare'] && hasTorch;
      const outLorafuse = path.join(workDir, `${method}-lorafuse`);
      const outReference = path.join(workDir, `${method}-reference`);
      const runLorafuse = async () => {
        await rm(outLorafuse, { recursive: true, force: true });
        evictFromCache(inputFiles);
        const m = await measure(
          process.execPath,
          ['--import', 'tsx', path.join(repoRoot, 'bench/merge/lorafuse-merge.ts'), recipePath, outLorafuse],
          { cwd: repoRoot },
        );
        lorafuse.runs.push(m);
        log(
          `  ${method} lorafuse  rep ${r + 1}: ${m.wallSeconds.toFixed(2)} s, peak RSS ${mb(m.peakRssBytes).toFixed(0)} MB`,
        );
      };
      const runReference = async () => {
        if (!hasTorch) return;
        await rm(outReference, { recursive: true, force: true });
        evictFromCache(inputFiles);
        const args = [
          path.join(repoRoot, 'bench/reference/merge_reference.py'),
          '--method',
          method,
          '--base',
          models.base,
          ...models.finetuned.flatMap((m) => ['--model', m]),
          '--weight',
          String(weight),
          '--density',
          String(density),
          '--out',
          outReference,
        ];
        const m = await measure(flags.python, args, { cwd: repoRoot });
        reference.runs.push(m);
        log(
          `  ${method} reference rep ${r + 1}: ${m.wallSeconds.toFixed(2)} s, peak RSS ${mb(m.peakRssBytes).toFixed(0)} MB`,
        );
      };
      // alternate which tool goes first, so neither always inherits the other's cache state
      if (r % 2 === 0) {
        await runLorafuse();
        await runReference();
      } else {
        await runReference();
        await runLorafuse();
      }
      if (keep) {
        const diff = await compareOutputs(outLorafuse, outReference);
        log(`  ${method} outputs: ${diff}`);
      }
      await rm(outLorafuse, { recursive: true, force: true });
      await rm(outReference, { recursive: true, force: true });
    }
    rows.push(lorafuse);
    if (hasTorch) rows.push(reference);
  }

  log('');
  log(
    `I/O floor (a child process reading every input once, ${flags.cache} cache): ${floorSeconds.toFixed(2)} s = ` +
      `${(mb(inputBytes) / floorSeconds).toFixed(0)} MB/s, peak RSS ${mb(Math.max(...floorRuns.map((m) => m.peakRssBytes))).toFixed(0)} MB`,
  );
  log('');
  const header = ['method', 'tool', 'wall s', 'in-process s', 'input MB/s', 'peak RSS MB', 'wall / floor'];
  const table: string[][] = [header];
  for (const row of rows) {
    const wall = median(row.runs.map((m) => m.wallSeconds));
    const inner = median(row.runs.map((m) => Number(m.report?.seconds ?? Number.NaN)));
    const rss = Math.max(...row.runs.map((m) => m.peakRssBytes));
    table.push([
      row.method,
      row.tool,
      wall.toFixed(2),
      inner.toFixed(2),
      (mb(inputBytes) / wall).toFixed(0),
      mb(rss).toFixed(0),
      (wall / floorSeconds).toFixed(2),
    ]);
  }
  const widths = header.map((_, c) => Math.max(...table.map((r) => r[c].length)));
  for (const r of table) log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));

  log('');
  for (const method of methods) {
    const ours = rows.find((r) => r.method === method && r.tool === 'lorafuse')!;
    const theirs = rows.find((r) => r.method === method && r.tool === 'reference');
    const oursWall = median(ours.runs.map((m) => m.wallSeconds));
    const oursRss = Math.max(...ours.runs.map((m) => m.peakRssBytes));
    const checks = [
      `within ${TARGETS.floorRatio}x of the I/O floor: ${(oursWall / floorSeconds).toFixed(2)}x ${oursWall / floorSeconds <= TARGETS.floorRatio ? 'PASS' : 'FAIL'}`,
      `peak RSS < ${mb(TARGETS.peakRssBytes)} MB: ${mb(oursRss).toFixed(0)} MB ${oursRss < TARGETS.peakRssBytes ? 'PASS' : 'FAIL'}`,
    ];
    if (theirs) {
      const ratio = median(theirs.runs.map((m) => m.wallSeconds)) / oursWall;
      const innerRatio =
        median(theirs.runs.map((m) => Number(m.report?.seconds))) /
        median(ours.runs.map((m) => Number(m.report?.seconds)));
      checks.unshift(
        `throughput vs reference: ${ratio.toFixed(2)}x (in-process ${innerRatio.toFixed(2)}x) ${ratio >= TARGETS.throughputRatio ? 'PASS' : 'FAIL'}`,
      );
    }
    log(`${method}: ${checks.join('; ')}`);
  }
  await rm(workDir, { recursive: true, force: true });
}

await main();
