// Training checkpoints (variables, AdamW moments, progress) saved periodically and resumed after a crash.
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { type HostTensor, readSafetensors, writeSafetensorsFile } from '../io/host-tensors.ts';
import type { AdamW } from './adamw.ts';

/** What a training checkpoint restores besides tensors: where the run was and what it had measured. */
export interface TrainingProgress {
  step: number;
  lossCurve: Array<{ step: number; loss: number }>;
  validation: Array<{ step: number; accuracy: number; loss: number }>;
  /** Identifies the run; a checkpoint of a different run is never resumed. */
  runKey: string;
}

const FILE = /^step-(\d+)\.safetensors$/;

/** Saves variables and AdamW moments after `progress.step` steps; keeps the two latest checkpoints. */
export async function saveTrainingCheckpoint(
  dir: string,
  variables: Map<string, tf.Variable>,
  optimizer: AdamW,
  progress: TrainingProgress,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries: Array<[string, HostTensor]> = [];
  for (const [key, variable] of variables) {
    const { m, v } = optimizer.momentsOf(key);
    entries.push([
      `${key}::value`,
      { dtype: 'F32', shape: variable.shape, data: (await variable.data()) as Float32Array },
    ]);
    entries.push([`${key}::m`, { dtype: 'F32', shape: variable.shape, data: m }]);
    entries.push([`${key}::v`, { dtype: 'F32', shape: variable.shape, data: v }]);
  }
  const name = `step-${String(progress.step).padStart(8, '0')}.safetensors`;
  await writeSafetensorsFile(path.join(dir, name), entries, { progress: JSON.stringify(progress) });
  const older = (await listCheckpoints(dir)).slice(0, -2);
  for (const file of older) await rm(path.join(dir, file), { force: true });
}

/** Restores the latest checkpoint of this run, if any; returns its progress. */
export async function resumeTrainingCheckpoint(
  dir: string,
  variables: Map<string, tf.Variable>,
  optimizer: AdamW,
  runKey: string,
): Promise<TrainingProgress | null> {
  const files = await listCheckpoints(dir);
  for (const file of files.reverse()) {
    let contents: Awaited<ReturnType<typeof readSafetensors>>;
    try {
      contents = await readSafetensors(path.join(dir, file));
    } catch {
      continue; // torn by a crash mid-write: try the previous one
    }
    const progress = JSON.parse(contents.metadata.progress ?? 'null') as TrainingProgress | null;
    if (!progress || progress.runKey !== runKey) return null;
    for (const [key, variable] of variables) {
      const read = (suffix: string) => {
        const saved = contents.tensors.get(`${key}::${suffix}`);
        if (!saved) throw new Error(`${file}: checkpoint lacks ${key}::${suffix}`);
        return saved;
      };
      const value = read('value');
      tf.tidy(() => variable.assign(tf.tensor(value.data as Float32Array, value.shape)));
      optimizer.setMoments(key, read('m').data as Float32Array, read('v').data as Float32Array);
    }
    optimizer.step = progress.step;
    return progress;
  }
  return null;
}

async function listCheckpoints(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => FILE.test(f)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
