// `npm run bench:merge`: lorafuse's streamed merge against two PyTorch references of the same
// per-tensor algorithm, on synthetic BF16 checkpoints (a base and three fine-tunes, ~0.5B parameters
// each by default): `torch-reused` (bench/reference/merge_reference_reused.py: working buffers
// allocated once and reused, float32 on 2 threads, torch.kthvalue for the top-k cutoff), which the
// targets compare against, and `torch-stacked` (merge_reference.py: fresh temporaries per tensor).
// Each rep runs every tool once, alternating which goes first. Prints wall time, user and system CPU
// time, input MB/s, peak RSS, the ratios, the load average, and the warm and cold I/O floors.
//
//   npm run bench:merge -- --params 50e6 --reps 2 --methods ties,dare_ties
//   npm run bench:merge -- --references reused          (skip the slow stacked reference)
//   BENCH_PARAMS=50e6 BENCH_REPS=3 npm run bench:merge

import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compareOutputs } from './compare-outputs.ts';
import { type Measurement, measure } from './measure.ts';
import { ensureBenchModels } from './synthetic-model.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const METHODS = ['task_arithmetic', 'ties', 'dare_ties'] as const;
/** Throughput ratios against torch-reused (issue 13), peak RSS and the kernel's share of CPU time. */
const TARGETS = {
  ratio: { task_arithmetic: 1.5, ties: 3, dare_ties: 1.5 } as Record<string, number>,
  peakRssBytes: 1e9,
  systemShare: 0.15,
};
const REFERENCES = {
  reused: 'bench/reference/merge_reference_reused.py',
  stacked: 'bench/reference/merge_reference.py',
} as const;
type Tool = 'lorafuse' | 'lorafuse-baseline' | `torch-${keyof typeof REFERENCES}`;

const { values: flags } = parseArgs({
  options: {
    params: { type: 'string', default: process.env.BENCH_PARAMS ?? '5e8' },
    reps: { type: 'string', default: process.env.BENCH_REPS ?? '2' },
    methods: { type: 'string', default: process.env.BENCH_METHODS ?? METHODS.join(',') },
    references: { type: 'string', default: process.env.BENCH_REFERENCES ?? 'reused,stacked' },
    data: { type: 'string', default: process.env.BENCH_DATA ?? path.join(repoRoot, '.bench-data') },
    weight: { type: 'string', default: '0.4' },
    density: { type: 'string', default: '0.2' },
    python: { type: 'string', default: process.env.PYTHON ?? 'python3' },
    /** Another lorafuse checkout (e.g. main, node_modules installed) timed as `lorafuse-baseline`. */
    baseline: { type: 'string' },
    'no-compare': { type: 'boolean', default: false },
    /** warm: inputs stay in the page cache (the targets' setting); cold: evicted before every run. */
    cache: { type: 'string', default: process.env.BENCH_CACHE ?? 'warm' },
  },
});

const params = Number(flags.params);
const reps = Math.max(1, Math.trunc(Number(flags.reps)));
const methods = flags.methods.split(',').map((m) => m.trim());
const references = flags.references
  .split(',')
  .map((r) => r.trim())
  .filter((r) => r !== '') as Array<keyof typeof REFERENCES>;
const weight = Number(flags.weight);
const density = Number(flags.density);
if (flags.cache !== 'cold' && flags.cache !== 'warm')
  throw new Error(`--cache ${flags.cache}: use cold or warm`);
if (!(params > 0)) throw new Error(`--params ${flags.params} is not a positive number`);
for (const m of methods)
  if (!(METHODS as readonly string[]).includes(m)) throw new Error(`unknown method ${m}`);
for (const r of references) if (!(r in REFERENCES)) throw new Error(`unknown reference ${r}`);

const log = (line: string) => process.stdout.write(`${line}\n`);
const mb = (bytes: number) => bytes / 1e6;
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');

function torchAvailable(): boolean {
  const probe = spawnSync(flags.python, ['-c', 'import torch, safetensors'], { stdio: 'ignore' });
  return probe.status === 0;
}

/** Drops the files' pages from the page cache (GNU dd's nocache advice), so the next read goes to disk. */
function evictFromCache(files: string[]): void {
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
  tool: Tool;
  runs: Measurement[];
}

const cpu = (m: Measurement) => m.userSeconds + m.systemSeconds;

async function main(): Promise<void> {
  const models = await ensureBenchModels(flags.data, params, log);
  const inputFiles = (await Promise.all([models.base, ...models.finetuned].map(safetensorsFiles))).flat();
  const inputBytes = inputFiles.reduce((sum, f) => sum + statSync(f).size, 0);
  const tools: Tool[] = ['lorafuse'];
  if (flags.baseline) tools.push('lorafuse-baseline');
  if (torchAvailable()) tools.push(...references.map((r) => `torch-${r}` as Tool));
  else {
    log(
      `references skipped: '${flags.python} -c "import torch, safetensors"' failed. Install with ` +
        `'pip install torch safetensors' (CPU wheels are enough) or Debian's 'python3-torch'.`,
    );
  }
  log(
    `models: ${(models.parameters / 1e6).toFixed(1)}M parameters each (BF16), base + ${models.finetuned.length} fine-tunes, ` +
      `${mb(inputBytes).toFixed(0)} MB of input per merge; weight ${weight}, density ${density}; ${reps} rep(s); ` +
      `${flags.cache} page cache; ${os.cpus().length} CPUs; load average ${load()} at start`,
  );

  const workDir = path.join(models.root, 'runs');
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });

  // The I/O floors: a child process reading every input once, from a cold and from a warm page cache.
  const floor = () =>
    measure(process.execPath, [
      '--import',
      'tsx',
      path.join(repoRoot, 'bench/merge/read-floor.ts'),
      ...inputFiles,
    ]);
  const coldRuns: Measurement[] = [];
  const warmRuns: Measurement[] = [];
  for (let r = 0; r < reps; r++) {
    evictFromCache(inputFiles);
    coldRuns.push(await floor());
    warmRuns.push(await floor());
  }
  const coldFloor = median(coldRuns.map((m) => m.wallSeconds));
  const warmFloor = median(warmRuns.map((m) => m.wallSeconds));
  const floorSeconds = flags.cache === 'cold' ? coldFloor : warmFloor;

  const rows: Row[] = [];
  for (const method of methods) {
    const recipePath = path.join(workDir, `${method}.yaml`);
    await writeFile(recipePath, recipeYaml(method, models.base, models.finetuned));
    const byTool = new Map<Tool, Row>(tools.map((tool) => [tool, { method, tool, runs: [] }]));
    const outDir = (tool: Tool) => path.join(workDir, `${method}-${tool}`);
    const run = async (tool: Tool, rep: number) => {
      await rm(outDir(tool), { recursive: true, force: true });
      if (flags.cache === 'cold') evictFromCache(inputFiles);
      const checkout = tool === 'lorafuse-baseline' ? path.resolve(flags.baseline!) : repoRoot;
      const [command, args] = tool.startsWith('lorafuse')
        ? [
            process.execPath,
            [
              '--import',
              'tsx',
              path.join(checkout, 'bench/merge/lorafuse-merge.ts'),
              recipePath,
              outDir(tool),
            ],
          ]
        : [
            flags.python,
            [
              path.join(repoRoot, REFERENCES[tool.slice('torch-'.length) as keyof typeof REFERENCES]),
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
              outDir(tool),
            ],
          ];
      const m = await measure(command as string, args as string[], { cwd: checkout });
      byTool.get(tool)!.runs.push(m);
      log(
        `  ${method} ${tool.padEnd(13)} rep ${rep + 1}: ${m.wallSeconds.toFixed(2)} s wall, ${m.userSeconds.toFixed(2)} s user, ` +
          `${m.systemSeconds.toFixed(2)} s system, peak RSS ${mb(m.peakRssBytes).toFixed(0)} MB (load ${load()})`,
      );
    };
    const methodIndex = methods.indexOf(method);
    for (let r = 0; r < reps; r++) {
      // alternate which tool goes first (by rep and by method), so neither always inherits the
      // other's cache state or load
      const order = (r + methodIndex) % 2 === 0 ? tools : [...tools].reverse();
      for (const tool of order) await run(tool, r);
      if (r === 0 && !flags['no-compare'] && tools.includes('torch-reused')) {
        log(
          `  ${method} outputs vs torch-reused: ${await compareOutputs(outDir('lorafuse'), outDir('torch-reused'))}`,
        );
      }
      for (const tool of tools) await rm(outDir(tool), { recursive: true, force: true });
    }
    rows.push(...byTool.values());
  }

  log('');
  log(
    `I/O floor (a child process reading every input once): cold page cache ${coldFloor.toFixed(2)} s = ` +
      `${(mb(inputBytes) / coldFloor).toFixed(0)} MB/s; warm ${warmFloor.toFixed(2)} s = ${(mb(inputBytes) / warmFloor).toFixed(0)} MB/s`,
  );
  log(`load average at the end: ${load()}`);
  log('');
  const header = [
    'method',
    'tool',
    'wall s',
    'user s',
    'system s',
    'system/CPU',
    'input MB/s',
    'peak RSS MB',
    'wall / floor',
  ];
  const table: string[][] = [header];
  for (const row of rows) {
    const wall = median(row.runs.map((m) => m.wallSeconds));
    const user = median(row.runs.map((m) => m.userSeconds));
    const system = median(row.runs.map((m) => m.systemSeconds));
    const rss = Math.max(...row.runs.map((m) => m.peakRssBytes));
    table.push([
      row.method,
      row.tool,
      wall.toFixed(2),
      user.toFixed(2),
      system.toFixed(2),
      `${((system / (user + system)) * 100).toFixed(0)}%`,
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
    const oursWall = median(ours.runs.map((m) => m.wallSeconds));
    const oursRss = Math.max(...ours.runs.map((m) => m.peakRssBytes));
    const systemShare = median(ours.runs.map((m) => m.systemSeconds / cpu(m)));
    const checks: string[] = [];
    for (const tool of tools.filter((t) => t !== 'lorafuse')) {
      if (tool === 'lorafuse-baseline' && !rows.some((r) => r.tool === tool)) continue;
      const theirs = rows.find((r) => r.method === method && r.tool === tool)!;
      const ratio = median(theirs.runs.map((m) => m.wallSeconds)) / oursWall;
      const cpuRatio = median(theirs.runs.map(cpu)) / median(ours.runs.map(cpu));
      const target = tool === 'torch-reused' ? TARGETS.ratio[method] : undefined;
      checks.push(
        `vs ${tool}: ${ratio.toFixed(2)}x throughput (CPU time ${cpuRatio.toFixed(2)}x)` +
          (target ? ` target ${target}x ${ratio >= target ? 'PASS' : 'FAIL'}` : ''),
      );
    }
    checks.push(
      `peak RSS < ${mb(TARGETS.peakRssBytes)} MB: ${mb(oursRss).toFixed(0)} MB ${oursRss < TARGETS.peakRssBytes ? 'PASS' : 'FAIL'}`,
      `system < ${TARGETS.systemShare * 100}% of CPU: ${(systemShare * 100).toFixed(0)}% ${systemShare < TARGETS.systemShare ? 'PASS' : 'FAIL'}`,
    );
    log(`${method}: ${checks.join('; ')}`);
  }
  await rm(workDir, { recursive: true, force: true });
}

await main();
