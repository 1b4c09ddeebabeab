// The study's frozen per-task heads, the analogue of CLIP's zero-shot heads: fixed functions of the pre-trained
// model that every fine-tuning mode trains through and every evaluation reads task t with. `probe` (default):
// a linear probe fitted on the pre-trained body's features of the task's own training split, so the
// pre-trained model through its head is a real baseline (the paper's "zero-shot" row) and normalized accuracy
// compares like with like. `random`: seeded random rows of norm 4, a head no data shaped.
import { loadRuntimeSettings } from '../../config.ts';
import { fitLinearProbe, probeAccuracy, probeAsHead } from '../../eval/linear-probe.ts';
import { backendOptions, initBackend } from '../../model/backend.ts';
import { bodyFeatures } from '../../model/inference.ts';
import { type LoadedModel, loadModel } from '../../model/load-model.ts';
import { deriveSeed, seededUniform } from '../../model/random.ts';
import type { Dataset } from '../../model/train/dataset.ts';
import { writeSafetensors } from '../../tensors/index.ts';

export type HeadKind = 'probe' | 'random';
export const HEAD_KINDS: readonly HeadKind[] = ['probe', 'random'];

async function writeHead(
  file: string,
  classes: number,
  features: number,
  weight: Float32Array,
  bias: Float32Array,
) {
  await writeSafetensors(file, [
    { name: 'weight', dtype: 'F32', shape: [classes, features], data: weight },
    { name: 'bias', dtype: 'F32', shape: [classes], data: bias },
  ]);
}

/** Seeded random rows (by the study's seed and the task) scaled to norm 4: logits neither flat nor saturated. */
export async function writeRandomHead(
  file: string,
  classes: number,
  features: number,
  seed: number,
  task: string,
): Promise<void> {
  const uniform = seededUniform(deriveSeed(seed, `study-head-${task}`));
  const weight = new Float32Array(classes * features);
  for (let c = 0; c < classes; c++) {
    let norm = 0;
    for (let f = 0; f < features; f++) {
      const v = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
      weight[c * features + f] = v;
      norm += v * v;
    }
    const scale = 4 / Math.sqrt(norm);
    for (let f = 0; f < features; f++) weight[c * features + f] *= scale;
  }
  await writeHead(file, classes, features, weight, new Float32Array(classes));
}

/** Fits heads on the pre-trained body, loaded once on this machine's backend for every task. */
export class ProbeHeads {
  private constructor(private readonly model: LoadedModel) {}

  static async load(modelDir: string): Promise<ProbeHeads> {
    await initBackend(backendOptions(loadRuntimeSettings()));
    return new ProbeHeads(await loadModel(modelDir));
  }

  /** Writes the probe fitted on `train` as a head file; returns its accuracy on `validation`. */
  async write(file: string, classes: number, train: Dataset, validation: Dataset): Promise<number> {
    const probe = fitLinearProbe(
      { features: await bodyFeatures(this.model, train.inputs), labels: train.labels },
      { classes },
    );
    const { weight, bias } = probeAsHead(probe);
    await writeHead(file, classes, probe.dims, weight, bias);
    return probeAccuracy(probe, {
      features: await bodyFeatures(this.model, validation.inputs),
      labels: validation.labels,
    });
  }

  dispose(): void {
    this.model.dispose();
  }
}
