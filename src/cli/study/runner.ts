// The study's jobs, submitted through the typed client as a remote user would: every fine-tune at once, then
// every merge (with its search and evaluation) and every per-mode analysis at once; the service's workers run
// them as concurrently as they are configured to. Returns what the table and results.json need.
import type { Job, LorafuseClient, MergeRecipe } from '../../client/index.ts';
import type { Report } from '../../eval/report/report-types.ts';
import type { StudyInputs } from './inputs.ts';
import type { StudyPlan } from './plan.ts';
import type { FinetuneModeName, MergeMethodName } from './presets.ts';

export type MergeSpace = 'parameters' | 'delta' | null;

export interface FinetuneOutcome {
  mode: FinetuneModeName;
  task: string;
  job: string;
  artifact: string;
  /**
   * sha256 of the trained weights file (adapter_model.safetensors or model.safetensors): equal across runs with
   * the same seed on the same backend. (The artifact digest also covers lorafuse.json, which names service ids.)
   */
  weightsSha256: string | null;
  /** The fine-tune's own held-out accuracy (a slice of the train split), as the job reports it. */
  valAccuracy: number | null;
  seconds: number;
  backend: string | null;
}

export interface MergeOutcome {
  mode: FinetuneModeName;
  method: MergeMethodName;
  space: MergeSpace;
  job: string;
  state: Job['state'];
  error: string | null;
  artifact: string | null;
  /** The search's chosen point (λ, density) or null. */
  chosen: Record<string, number> | null;
  seconds: number;
  /** The report artifact (rpt_…) the job wrote. */
  reportId: string | null;
  report: Report | null;
}

export interface AnalysisOutcome {
  mode: FinetuneModeName;
  job: string;
  meanOffDiagonalCosine: number | null;
  meanOffDiagonalDeltaCosine: number | null;
  meanDisentanglementError: number | null;
  reportId: string | null;
  report: Report | null;
}

const elapsed = (job: Job) =>
  job.startedAt && job.finishedAt ? (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000 : 0;

async function finished(client: LorafuseClient, id: string, plan: StudyPlan): Promise<Job> {
  return client.waitForJob(id, { timeoutMs: plan.jobTimeoutMs, maxIntervalMs: 1000 });
}

function failure(job: Job): string {
  return `job ${job.id} ended ${job.state}${job.error ? `: ${job.error.type}: ${job.error.message}` : ''}`;
}

export async function runFinetunes(
  client: LorafuseClient,
  plan: StudyPlan,
  inputs: StudyInputs,
  say: (line: string) => void,
): Promise<FinetuneOutcome[]> {
  const submitted: Array<{ mode: FinetuneModeName; task: string; job: Job }> = [];
  for (const mode of plan.modes) {
    for (const task of inputs.tasks) {
      const t = plan.training;
      const job = await client.submitFinetune({
        model: inputs.backbone.id,
        dataset: task.train,
        mode,
        ...(mode === 'full'
          ? {}
          : {
              rank: t.rank,
              alpha: t.alpha,
              ...(t.targetModules ? { target_modules: t.targetModules } : {}),
            }),
        steps: t.steps,
        batch_size: t.batchSize,
        learning_rate: t.learningRate[mode],
        // One seed for every task: the same A₀ everywhere, so the adapters of one mode share their expansion point.
        seed: plan.seed,
        head: task.head,
      });
      submitted.push({ mode, task: task.name, job });
    }
  }
  say(`  ${submitted.length} fine-tune jobs queued`);
  return Promise.all(
    submitted.map(async ({ mode, task, job }) => {
      const done = await finished(client, job.id, plan);
      if (done.state !== 'completed') throw new Error(`fine-tune ${mode} ${task}: ${failure(done)}`);
      const result = done.result as { artifact: { id: string }; valAccuracy: number | null };
      const record = await client.getArtifact(mode === 'full' ? 'model' : 'adapter', result.artifact.id);
      const training = record.lineage?.training as { backend?: string } | undefined;
      const outcome: FinetuneOutcome = {
        mode,
        task,
        job: done.id,
        artifact: result.artifact.id,
        weightsSha256:
          record.files.find((f) => f.name === 'adapter_model.safetensors' || f.name === 'model.safetensors')
            ?.sha256 ?? null,
        valAccuracy: result.valAccuracy,
        seconds: elapsed(done),
        backend: training?.backend ?? null,
      };
      say(
        `  fine-tuned ${mode.padEnd(5)} ${task.padEnd(12)} -> ${outcome.artifact}  held-out accuracy ${formatShare(outcome.valAccuracy)}  (${outcome.seconds.toFixed(1)} s)`,
      );
      return outcome;
    }),
  );
}

function formatShare(value: number | null): string {
  return value === null ? '—' : `${(100 * value).toFixed(1)}%`;
}

/** The recipe of one merge cell: method, space, the inputs of one mode, evaluation tasks, the search grid. */
export function mergeRecipe(
  plan: StudyPlan,
  inputs: StudyInputs,
  tuned: FinetuneOutcome[],
  mode: FinetuneModeName,
  method: MergeMethodName,
  space: MergeSpace,
): MergeRecipe {
  const key = mode === 'full' ? 'model' : 'adapter';
  const artifacts = inputs.tasks.map(
    (task) => tuned.find((t) => t.mode === mode && t.task === task.name)!.artifact,
  );
  const evaluation = {
    tasks: inputs.tasks.map((task, i) => ({
      name: task.name,
      validation: task.validation,
      test: task.test,
      head: task.head,
      reference: artifacts[i],
    })),
    // The study draws ξ once per mode by its own analysis: each merge's report would only repeat it.
    disentanglement: false as const,
  };
  const lora = space ? { lora: space === 'delta' ? { space, output: 'model' } : { space } } : {};
  const models = artifacts.map((id) => ({ [key]: id, parameters: { weight: 1 } }));
  const base = { base_model: inputs.backbone.id };
  const preset = plan.preset;
  switch (method) {
    case 'average':
      // Simple averaging: mergekit's linear with equal weights (normalized), no base needed in parameter space.
      return {
        merge_method: 'linear',
        ...(space === 'delta' ? base : {}),
        models,
        ...lora,
        dtype: 'float32',
        evaluation,
      };
    case 'task_arithmetic':
      return {
        merge_method: 'task_arithmetic',
        ...base,
        models,
        ...lora,
        dtype: 'float32',
        evaluation,
        search: { grid: preset.search.task_arithmetic },
      };
    case 'ties':
      return {
        merge_method: 'ties',
        ...base,
        models,
        ...lora,
        dtype: 'float32',
        evaluation,
        search: { grid: preset.search.ties },
      };
    case 'lorahub':
      return {
        merge_method: 'lorahub',
        ...base,
        models: artifacts.map((id) => ({ [key]: id })),
        parameters: { ...preset.lorahub },
        seed: plan.seed,
        dtype: 'float32',
        evaluation,
      };
  }
}

/** Every (mode, method, space) cell the plan asks for: LoRA modes merge in both spaces; LoraHub has one. */
export function mergeCells(
  plan: StudyPlan,
): Array<{ mode: FinetuneModeName; method: MergeMethodName; space: MergeSpace }> {
  const cells: Array<{ mode: FinetuneModeName; method: MergeMethodName; space: MergeSpace }> = [];
  for (const mode of plan.modes) {
    for (const method of plan.methods) {
      if (mode === 'full') cells.push({ mode, method, space: null });
      else if (method === 'lorahub') cells.push({ mode, method, space: 'parameters' });
      else for (const space of ['parameters', 'delta'] as const) cells.push({ mode, method, space });
    }
  }
  return cells;
}

export async function runMerges(
  client: LorafuseClient,
  plan: StudyPlan,
  inputs: StudyInputs,
  tuned: FinetuneOutcome[],
  say: (line: string) => void,
): Promise<MergeOutcome[]> {
  const submitted: Array<{ cell: ReturnType<typeof mergeCells>[number]; job: Job }> = [];
  for (const cell of mergeCells(plan)) {
    const recipe = mergeRecipe(plan, inputs, tuned, cell.mode, cell.method, cell.space);
    submitted.push({ cell, job: await client.submitMerge(recipe) });
  }
  say(`  ${submitted.length} merge jobs queued (searches run their grid points as child jobs)`);
  return Promise.all(
    submitted.map(async ({ cell, job }) => {
      const done = await finished(client, job.id, plan);
      const label = `${cell.mode.padEnd(5)} ${cell.method}${cell.space ? ` (${cell.space})` : ''}`;
      if (done.state !== 'completed') {
        say(`  merge ${label} FAILED: ${failure(done)}`);
        return {
          ...cell,
          job: done.id,
          state: done.state,
          error: failure(done),
          artifact: null,
          chosen: null,
          seconds: elapsed(done),
          reportId: null,
          report: null,
        };
      }
      const result = done.result as {
        artifact: { id: string };
        report?: { id: string };
        chosen?: { params: Record<string, number> };
      };
      const report = (await client.jobReport(done.id)) as unknown as Report;
      const outcome: MergeOutcome = {
        ...cell,
        job: done.id,
        state: done.state,
        error: null,
        artifact: result.artifact.id,
        chosen: result.chosen?.params ?? null,
        seconds: elapsed(done),
        reportId: result.report?.id ?? null,
        report,
      };
      const chosen = outcome.chosen
        ? `  chosen on validation: ${Object.entries(outcome.chosen)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')}`
        : '';
      say(
        `  merged ${label.padEnd(36)} test ${formatShare(report.averages.accuracy)} abs / ${formatShare(report.averages.normalizedAccuracy)} norm${chosen}`,
      );
      return outcome;
    }),
  );
}

export async function runAnalyses(
  client: LorafuseClient,
  plan: StudyPlan,
  inputs: StudyInputs,
  tuned: FinetuneOutcome[],
  say: (line: string) => void,
): Promise<AnalysisOutcome[]> {
  const submitted: Array<{ mode: FinetuneModeName; job: Job }> = [];
  for (const mode of plan.modes) {
    const artifacts = inputs.tasks.map(
      (task) => tuned.find((t) => t.mode === mode && t.task === task.name)!.artifact,
    );
    const [first, second] = inputs.tasks;
    const job = await client.submitAnalysis({
      base_model: inputs.backbone.id,
      [mode === 'full' ? 'models' : 'adapters']: artifacts,
      names: inputs.tasks.map((task) => task.name),
      disentanglement: {
        tasks: [
          { input: artifacts[0], dataset: first.test, name: first.name, head: first.head },
          { input: artifacts[1], dataset: second.test, name: second.name, head: second.head },
        ],
        grid: plan.disentanglement.grid,
        max_examples: plan.disentanglement.examples,
      },
    });
    submitted.push({ mode, job });
  }
  return Promise.all(
    submitted.map(async ({ mode, job }) => {
      const done = await finished(client, job.id, plan);
      if (done.state !== 'completed') throw new Error(`analysis ${mode}: ${failure(done)}`);
      const result = done.result as {
        artifact: { id: string };
        meanOffDiagonalCosine: number;
        meanOffDiagonalDeltaCosine: number | null;
        meanDisentanglementError: number | null;
      };
      const report = (await client.jobReport(done.id)) as unknown as Report;
      say(
        `  analysed ${mode.padEnd(5)} mean off-diagonal cosine ${result.meanOffDiagonalCosine.toFixed(3)} (parameters)${result.meanOffDiagonalDeltaCosine === null ? '' : `, ${result.meanOffDiagonalDeltaCosine.toFixed(3)} (ΔW)`}; mean ξ ${result.meanDisentanglementError?.toFixed(3) ?? '—'}`,
      );
      return {
        mode,
        job: done.id,
        meanOffDiagonalCosine: result.meanOffDiagonalCosine,
        meanOffDiagonalDeltaCosine: result.meanOffDiagonalDeltaCosine,
        meanDisentanglementError: result.meanDisentanglementError,
        reportId: result.artifact.id,
        report,
      };
    }),
  );
}
