// The build's code rules can fail: the import-layer rules (.dependency-cruiser.cjs) and the unused-export
// check (knip.jsonc) run on small scratch trees that break them, and must name each broken rule.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function scratchTree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lorafuse-rules-'));
  await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const tsconfig = {
    compilerOptions: {
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      allowImportingTsExtensions: true,
      noEmit: true,
    },
  };
  await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

describe('import-layer rules', () => {
  let dir: string;
  let violated: Map<string, string[]>;
  before(async () => {
    dir = await scratchTree({
      'src/config.ts': 'export const setting = 1;\n',
      'src/tensors/dtype.ts': "import { merged } from '../merge/merged.ts';\nexport const dtype = merged;\n",
      'src/tensors/ok.ts': 'export const ok = 1;\n',
      'src/merge/merged.ts':
        "import { ok } from '../tensors/ok.ts';\nimport { trained } from '../model/trained.ts';\nexport const merged = ok + trained;\n",
      'src/merge/logs.ts': "import pino from 'pino';\nexport const log = pino;\n",
      'src/merge/circle-a.ts': "import { b } from './circle-b.ts';\nexport const a = () => b;\n",
      'src/merge/circle-b.ts': "import { a } from './circle-a.ts';\nexport const b = () => a;\n",
      // Allowed: model takes settings from src/config.ts and imports tensors.
      'src/model/trained.ts':
        "import { setting } from '../config.ts';\nimport { ok } from '../tensors/ok.ts';\nexport const trained = setting + ok;\n",
      'src/model/server.ts': "import Fastify from 'fastify';\nexport const server = Fastify;\n",
      'src/store/store.ts':
        "import { Queue } from 'bullmq';\nimport { merged } from '../merge/merged.ts';\nexport const store = [Queue, merged];\n",
      // Allowed: a type-only import of ours and of bullmq in the contract.
      'src/queue/contract.ts':
        "import type { JobsOptions } from 'bullmq';\nimport type { Stored } from '../store/types.ts';\nexport type Payload = JobsOptions & Stored;\n",
      'src/queue/bad-contract.ts':
        "import { Queue } from 'bullmq';\nimport { store } from '../store/store.ts';\nexport const q = [Queue, store];\n",
      'src/store/types.ts': 'export interface Stored { id: string }\n',
      'src/api/app.ts': "import { trained } from '../model/trained.ts';\nexport const app = trained;\n",
      'src/eval/metric.ts':
        "import { serve } from '../../workers/worker.ts';\nexport const metric = serve;\n",
      'workers/worker.ts': "import { app } from '../src/api/app.ts';\nexport const serve = app;\n",
    });
    const cli = path.join(repoRoot, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
    const run = spawnSync(
      process.execPath,
      [
        cli,
        'src',
        'workers',
        '--config',
        path.join(repoRoot, '.dependency-cruiser.cjs'),
        '--output-type',
        'json',
      ],
      { cwd: dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    // The json reporter exits 0; `npm run check:imports` (text reporter) exits with the error count.
    const result = JSON.parse(run.stdout) as {
      summary: { error: number; violations: Array<{ from: string; to: string; rule: { name: string } }> };
    };
    assert.ok(result.summary.error > 0, 'depcruise must report errors on a tree that breaks its rules');
    violated = new Map();
    for (const v of result.summary.violations) {
      const list = violated.get(v.rule.name) ?? [];
      list.push(`${v.from} -> ${v.to}`);
      violated.set(v.rule.name, list);
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const expect = (rule: string, edge: string) => {
    const edges = violated.get(rule) ?? [];
    assert.ok(
      edges.some((e) => e.includes(edge)),
      `${rule} should flag ${edge}; flagged ${JSON.stringify([...violated])}`,
    );
  };

  it('tensors imports nothing of ours', () =>
    expect('tensors-imports-only-itself', 'src/tensors/dtype.ts -> src/merge/merged.ts'));
  it('merge imports only tensors', () =>
    expect('merge-imports-only-tensors', 'src/merge/merged.ts -> src/model/trained.ts'));
  it('store imports only tensors', () =>
    expect('store-imports-only-tensors', 'src/store/store.ts -> src/merge/merged.ts'));
  it('eval never imports workers', () =>
    expect('eval-imports-only-tensors-merge-model', 'src/eval/metric.ts -> workers/worker.ts'));
  it('queue takes only types of ours', () =>
    expect('queue-imports-only-types-of-ours', 'src/queue/bad-contract.ts -> src/store/store.ts'));
  it('the API never imports the runtimes', () =>
    expect('api-imports-store-queue-merge', 'src/api/app.ts -> src/model/trained.ts'));
  it('workers never import the API', () =>
    expect('workers-never-import-api-cli', 'workers/worker.ts -> src/api/app.ts'));
  it('no pino in merge, no bullmq in store', () => {
    expect('no-frameworks-below-api', 'src/merge/logs.ts -> ');
    expect('bullmq-only-in-queue', 'src/store/store.ts -> ');
  });
  it('no fastify in model', () => expect('no-servers-in-model-eval', 'src/model/server.ts -> '));
  it('circular imports', () => expect('no-circular', 'src/merge/circle-'));
  it('what DESIGN.md allows is not flagged', () => {
    const all = [...violated.values()].flat();
    for (const allowed of ['src/model/trained.ts -> src/config.ts', 'src/queue/contract.ts ->']) {
      assert.ok(!all.some((e) => e.startsWith(allowed)), `${allowed} was flagged: ${JSON.stringify(all)}`);
    }
    assert.ok(!all.some((e) => e.includes('src/merge/merged.ts -> src/tensors/ok.ts')));
  });
});

describe('unused-export check', () => {
  it('fails on an export nothing imports, naming it', async () => {
    const dir = await scratchTree({
      'package.json': JSON.stringify({ name: 'scratch', type: 'module', private: true }),
      'src/merge/index.ts': "export { used } from './math.ts';\n",
      'src/merge/math.ts':
        'export function used() { return 1; }\nexport function forgotten() { return 2; }\n',
    });
    try {
      const knip = path.join(repoRoot, 'node_modules/knip/bin/knip.js');
      const run = spawnSync(
        process.execPath,
        [knip, '--config', path.join(repoRoot, 'knip.jsonc'), '--no-progress', '--include', 'exports'],
        { cwd: dir, encoding: 'utf8' },
      );
      assert.notEqual(run.status, 0, `knip passed a tree with an unused export:\n${run.stdout}${run.stderr}`);
      assert.match(run.stdout, /forgotten\s+function\s+src\/merge\/math\.ts/);
      assert.doesNotMatch(run.stdout, /\bused\b\s+function/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
