// Inputs of the fine-tune and evaluate worker tests: the tiny MLP fixture model (48 inputs, 4
// classes) and its adapter, and learnable datasets for it, stored as artifacts.
import { cpSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { type ArtifactStore, LORAFUSE_VERSION } from '../../src/store/index.ts';
import { datasetMetadata, writeDatasetFile } from '../store/dataset-fixtures.ts';

export const MLP_FIXTURE = path.resolve(import.meta.dirname, '..', 'fixtures', 'model', 'mlp');

const lineage = { parents: [], lorafuseVersion: LORAFUSE_VERSION };

async function ingestCopy(store: ArtifactStore, kind: 'model' | 'adapter', from: string, scratch: string) {
  const dir = path.join(scratch, `${kind}-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  cpSync(from, dir, { recursive: true, filter: (file) => !file.endsWith('README.md') });
  return (await store.ingestDirectory(kind, dir, lineage)).id;
}

export function ingestMlpModel(store: ArtifactStore, scratch: string): Promise<string> {
  return ingestCopy(store, 'model', path.join(MLP_FIXTURE, 'model'), scratch);
}

export function ingestMlpAdapter(store: ArtifactStore, scratch: string): Promise<string> {
  return ingestCopy(store, 'adapter', path.join(MLP_FIXTURE, 'adapter'), scratch);
}

export async function ingestMlpDataset(
  store: ArtifactStore,
  scratch: string,
  options: { n: number; seed?: number; split?: string },
): Promise<{ id: string; file: string }> {
  const dir = path.join(scratch, `dataset-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  mkdirSync(dir, { recursive: true });
  const file = await writeDatasetFile(path.join(dir, 'dataset.safetensors'), {
    n: options.n,
    seed: options.seed,
    metadata: datasetMetadata({ split: options.split ?? 'train' }),
  });
  const copy = path.join(scratch, `${path.basename(dir)}.safetensors`);
  cpSync(file, copy);
  return { id: (await store.ingestDirectory('dataset', dir, lineage)).id, file: copy };
}
