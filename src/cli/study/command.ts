// `lorafuse study`: the paper's comparison, run through a lorafuse service's HTTP API with the typed client.
// With no URL it starts the embedded stack (private Redis, API, workers) in a data directory of its own, as
// `lorafuse dev` does, and stops it at the end.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { LorafuseClient } from '../../client/index.ts';
import { loadConfig } from '../../config.ts';
import { MNIST_BACKBONE_DIR } from '../../eval/datasets/mnist-backbone.ts';
import { prepareCommand } from '../args.ts';
import { DEMO_SPEC } from '../usage.ts';
import type { DevStack } from '../dev-command.ts';
import { RedisServerMissingError } from '../embedded-redis.ts';
import { buildPlan, STUDY_SPEC, type StudyPlan } from './plan.ts';
import { uploadStudyInputs } from './inputs.ts';
import { runAnalyses, runFinetunes, runMerges } from './runner.ts';
import { buildResults, writeStudyOutputs } from './results.ts';
import { buildTable, formatTable } from './table.ts';

export interface StudyRun {
  resultsFile: string;
  reportFile: string;
  table: string;
}

/** Starts the embedded stack for a study: its own data dir, queue prefix and a free port. */
async function startEmbedded(
  plan: StudyPlan,
  say: (line: string) => void,
): Promise<{ stack: DevStack; dataDir: string }> {
  const { startDevStack } = await import('../dev-command.ts');
  const dataDir = path.join(plan.outDir, 'service-data');
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  const config = loadConfig({
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    LORAFUSE_DATA_DIR: dataDir,
    LORAFUSE_QUEUE_PREFIX: process.env.LORAFUSE_QUEUE_PREFIX ?? 'lorafuse-study',
  });
  const stack = await startDevStack(config, {
    quiet: true,
    onRedis: (url, embedded) => say(`  redis     ${embedded ? `embedded redis-server at ${url}` : url}`),
  });
  return { stack, dataDir };
}

/** Runs the study the plan describes; prints as it goes; returns where the results are. */
export async function runStudyPlan(
  plan: StudyPlan,
  argv: string[],
  say: (line: string) => void,
): Promise<StudyRun> {
  const started = Date.now();
  const timings: Record<string, number> = {};
  const mark = (name: string, since: number) => {
    timings[name] = (Date.now() - since) / 1000;
  };
  let embedded: { stack: DevStack; dataDir: string } | undefined;
  try {
    say(
      `lorafuse study (${plan.preset.name}): ${plan.tasks.length} tasks × ${plan.modes.join(', ')}, seed ${plan.seed}`,
    );
    let url = plan.url;
    if (!url) {
      embedded = await startEmbedded(plan, say);
      url = embedded.stack.api.url;
    }
    say(`  service   ${url}${embedded ? ' (embedded: API + Redis queue + workers on this machine)' : ''}`);
    // The embedded stack makes its own local key (API keys are on by default); a remote service takes the user's.
    const client = new LorafuseClient({ baseUrl: url, apiKey: embedded?.stack.apiKey ?? plan.apiKey });
    await client.readiness();

    say('\n1. Uploads (skipped for content the service already holds)');
    let since = Date.now();
    const inputs = await uploadStudyInputs(
      client,
      plan,
      plan.modelDir ?? MNIST_BACKBONE_DIR,
      plan.outDir,
      say,
    );
    mark('uploadSeconds', since);

    say(`\n2. Fine-tuning every task in ${plan.modes.join(', ')} through its frozen head (one seed, one A₀)`);
    since = Date.now();
    const finetunes = await runFinetunes(client, plan, inputs, say);
    mark('finetuneSeconds', since);

    say(
      "\n3. Merging each mode's set (search on validation, evaluation on test) and analysing its task vectors",
    );
    since = Date.now();
    const [merges, analyses] = await Promise.all([
      runMerges(client, plan, inputs, finetunes, say),
      runAnalyses(client, plan, inputs, finetunes, say),
    ]);
    mark('mergeAndAnalysisSeconds', since);
    timings.totalSeconds = (Date.now() - started) / 1000;

    const taskNames = inputs.tasks.map((t) => t.name);
    const table = buildTable(plan.modes, plan.methods, taskNames, merges, analyses);
    const results = buildResults({
      plan,
      argv,
      service: { url, embedded: embedded !== undefined },
      inputs,
      table,
      finetunes,
      merges,
      analyses,
      timings,
    });
    const written = await writeStudyOutputs(plan.outDir, results, analyses);
    const text = formatTable(table, taskNames);
    say(`\n4. Results (${timings.totalSeconds.toFixed(0)} s)\n`);
    say(text);
    say(`results   ${written.resultsFile}`);
    say(`report    ${written.reportFile}`);
    const failed = merges.filter((m) => m.error);
    if (failed.length > 0)
      say(`${failed.length} merge job(s) failed: their cells read n/a (see results.json)`);
    return { ...written, table: text };
  } finally {
    if (embedded) {
      await embedded.stack.stop().catch(() => undefined);
      await rm(embedded.dataDir, { recursive: true, force: true });
    }
  }
}

/** `lorafuse demo` (npm run demo): the quick study, the product end to end. */
export async function runStudyDemo(argv: string[]): Promise<number> {
  const parsed = prepareCommand(DEMO_SPEC, argv);
  if (typeof parsed === 'number') return parsed;
  return runStudy(['--quick', '--out', (parsed.values.out as string | undefined) ?? 'lorafuse-demo']);
}

export async function runStudy(argv: string[]): Promise<number> {
  const parsed = prepareCommand(STUDY_SPEC, argv);
  if (typeof parsed === 'number') return parsed;
  let plan: StudyPlan;
  try {
    plan = buildPlan(parsed, process.env);
  } catch (error) {
    process.stderr.write(`lorafuse study: ${(error as Error).message}\n`);
    return 2;
  }
  const say = (line: string) => process.stdout.write(`${line}\n`);
  try {
    await runStudyPlan(plan, argv, say);
    return 0;
  } catch (error) {
    if (error instanceof RedisServerMissingError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    process.stderr.write(`lorafuse study failed: ${(error as Error).message}\n`);
    return 1;
  }
}
