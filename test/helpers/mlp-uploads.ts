// The small MLP fixture (test/fixtures/model/mlp) and synthetic datasets uploaded through a test app, for the
// tests that merge, search or analyse real stored artifacts: one place for the upload steps they all need.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { filePart, multipart, type Part, type TestApi } from '../api/harness.ts';
import { datasetMetadata, writeDatasetFile } from '../store/dataset-fixtures.ts';

export const MLP = path.resolve(import.meta.dirname, '..', 'fixtures', 'model', 'mlp');

/** The files of a fixture folder as upload parts, its notes (*.md) left out, in name order. */
export async function folderParts(dir: string): Promise<Part[]> {
  const names = (await fs.readdir(dir)).filter((name) => !name.endsWith('.md')).sort();
  return Promise.all(names.map(async (name) => filePart(name, await fs.readFile(path.join(dir, name)))));
}

/** POSTs a multipart upload, asserts 201, and returns the new artifact's id. */
export async function postParts(api: TestApi, url: string, parts: Part[]): Promise<string> {
  const response = await api.app.inject({ method: 'POST', url, ...multipart(parts) });
  assert.equal(response.statusCode, 201, response.body);
  return response.json().id as string;
}

/** The MLP model and two adapters made from its adapter folder on it, in that order. */
export async function uploadMlp(api: TestApi): Promise<{ model: string; adapters: string[] }> {
  const model = await postParts(api, '/v1/models', await folderParts(path.join(MLP, 'model')));
  const adapter = await folderParts(path.join(MLP, 'adapter'));
  const adapters = [
    await postParts(api, '/v1/adapters', [...adapter, { name: 'base_model', data: model }]),
    await postParts(api, '/v1/adapters', [...adapter, { name: 'base_model', data: model }]),
  ];
  return { model, adapters };
}

/** A synthetic dataset of `n` examples for the MLP, written under the app's work folder and uploaded. */
export async function uploadDataset(api: TestApi, split: string, seed: number, n: number): Promise<string> {
  const file = await writeDatasetFile(path.join(api.workDir, `${split}-${seed}.safetensors`), {
    n,
    seed,
    metadata: datasetMetadata({ split }),
  });
  return postParts(api, '/v1/datasets', [filePart('dataset.safetensors', await fs.readFile(file))]);
}

/** Two evaluation tasks, `a` and `b`, each with its own validation and test datasets of `n` examples. */
export async function uploadEvaluationTasks(api: TestApi, n: number) {
  return [
    {
      name: 'a',
      validation: await uploadDataset(api, 'validation', 1, n),
      test: await uploadDataset(api, 'test', 2, n),
    },
    {
      name: 'b',
      validation: await uploadDataset(api, 'validation', 3, n),
      test: await uploadDataset(api, 'test', 4, n),
    },
  ];
}
