// The task-vector analysis of stored artifacts: opens the base and the inputs from the store (headers only
// until a tensor is read) and streams them through src/eval/analysis. Shared by the analyze job and any job
// that puts an analysis in its report (a merge over adapters or models).
import {
  analyzeAdapters,
  analyzeModels,
  type CheckpointAnalysis,
} from '../../src/eval/analysis/analyze-checkpoints.ts';
import { architectureFor, type ModelConfig } from '../../src/model/architectures/index.ts';
import type { ArtifactInputs } from '../../src/store/index.ts';

export async function analyzeStoredInputs(
  inputs: ArtifactInputs,
  args: {
    baseModel: string;
    kind: 'adapter' | 'model';
    artifacts: string[];
    /** TIES trim before counting sign conflicts (default 1: none). */
    density?: number;
    onStep?: (done: number, total: number) => void | Promise<void>;
  },
): Promise<CheckpointAnalysis> {
  const base = await inputs.openModel(args.baseModel);
  const options = { density: args.density ?? 1, onStep: args.onStep };
  if (args.kind === 'adapter') {
    const opened = [];
    for (const id of args.artifacts) opened.push({ id, ...(await inputs.openAdapter(id)) });
    const modelType = typeof base.config?.model_type === 'string' ? base.config.model_type : null;
    return analyzeAdapters({ modelType, inputs: opened, options });
  }
  const models = [];
  for (const id of args.artifacts) models.push({ id, checkpoint: (await inputs.openModel(id)).checkpoint });
  return analyzeModels({ base: base.checkpoint, inputs: models, exclude: headModules(base.config), options });
}

/** The architecture's task head (never part of a task vector); none for a model the runtime does not know. */
function headModules(config: Record<string, unknown> | undefined): string[] {
  if (!config || typeof config.model_type !== 'string') return [];
  try {
    return architectureFor(config.model_type).headModules(config as ModelConfig);
  } catch {
    return [];
  }
}
