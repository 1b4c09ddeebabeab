// The study's inputs, uploaded as any client would: the backbone, each task's three splits and its frozen
// head. Files whose content digest the service already holds are not sent again.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Artifact, ArtifactKind, LorafuseClient } from '../../client/index.ts';
import { buildStudyTask } from '../../eval/datasets/mnist-suite.ts';
import { type Dataset, readDataset, writeDataset } from '../../model/train/dataset.ts';
import { ProbeHeads, writeRandomHead } from './heads.ts';
import type { StudyPlan } from './plan.ts';
import { architectureFor } from '../../model/architectures/index.ts';
import type { ModelConfig } from '../../model/architectures/architecture.ts';

export interface UploadedTask {
  name: string;
  classes: number;
  train: string;
  validation: string;
  test: string;
  /** The stored head (hed_…) every mode fine-tunes through, frozen, and every evaluation reads task t with. */
  head: string;
}

export interface StudyInputs {
  backbone: Artifact;
  tasks: UploadedTask[];
}

/** sha256 of the file manifest, as the service computes Artifact.digest. */
async function manifestDigest(files: Array<{ name: string; path: string }>): Promise<string> {
  const lines: string[] = [];
  for (const file of [...files].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    lines.push(
      `${createHash('sha256')
        .update(await readFile(file.path))
        .digest('hex')}  ${file.name}\n`,
    );
  }
  return createHash('sha256').update(lines.join('')).digest('hex');
}

/** Uploads the files as one artifact, unless the service holds one with the same content. */
export async function uploadOnce(
  client: LorafuseClient,
  kind: ArtifactKind,
  files: Array<{ name: string; path: string }>,
): Promise<Artifact> {
  const found = await client.findArtifactByDigest(kind, await manifestDigest(files));
  if (found) return found;
  const parts = [];
  for (const file of files) parts.push({ name: file.name, data: new Blob([await readFile(file.path)]) });
  return client.uploadArtifact(kind, parts);
}

export async function uploadStudyInputs(
  client: LorafuseClient,
  plan: StudyPlan,
  backboneDir: string,
  workDir: string,
  say: (line: string) => void,
): Promise<StudyInputs> {
  const modelFiles = (await readdir(backboneDir))
    .filter((name) => name === 'config.json' || name.endsWith('.safetensors') || name.endsWith('.index.json'))
    .map((name) => ({ name, path: path.join(backboneDir, name) }));
  const backbone = await uploadOnce(client, 'model', modelFiles);
  say(`  backbone  ${backbone.id}  (${backbone.parameterCount} parameters, ${backboneDir})`);
  const config = JSON.parse(await readFile(path.join(backboneDir, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  // The width the architecture's head reads (hidden size; CLIP's projection; the MLP's last layer).
  const features = architectureFor(String(config.model_type)).headFeatures(config as ModelConfig);
  const tasks: UploadedTask[] = [];
  const probes =
    plan.heads === 'probe' && plan.tasks.some((t) => !t.files?.head)
      ? await ProbeHeads.load(backboneDir)
      : null;
  try {
    for (const task of plan.tasks) {
      const dir = path.join(workDir, 'inputs', task.name);
      await mkdir(dir, { recursive: true });
      let files = task.files;
      let splits: Record<'train' | 'validation' | 'test', Dataset> | null = null;
      if (!files) {
        splits = buildStudyTask(task.name, plan.sizes, plan.seed);
        files = {
          train: path.join(dir, 'train.safetensors'),
          validation: path.join(dir, 'validation.safetensors'),
          test: path.join(dir, 'test.safetensors'),
        };
        for (const split of ['train', 'validation', 'test'] as const)
          await writeDataset(files[split], splits[split]);
      }
      const ids: Record<string, Artifact> = {};
      for (const split of ['train', 'validation', 'test'] as const) {
        ids[split] = await uploadOnce(client, 'dataset', [
          { name: 'dataset.safetensors', path: files[split] },
        ]);
      }
      const classes = ids.train.classes?.length ?? task.classNames.length;
      const headFile = files.head ?? path.join(dir, 'head.safetensors');
      let headNote = 'its own head';
      if (!files.head && probes) {
        const train = splits?.train ?? (await readDataset(files.train));
        const validation = splits?.validation ?? (await readDataset(files.validation));
        const accuracy = await probes.write(headFile, classes, train, validation);
        headNote = `probe head (validation ${(100 * accuracy).toFixed(1)}%)`;
      } else if (!files.head) {
        await writeRandomHead(headFile, classes, features, plan.seed, task.name);
        headNote = 'random head';
      }
      const head = await uploadOnce(client, 'head', [{ name: 'head.safetensors', path: headFile }]);
      tasks.push({
        name: task.name,
        classes,
        train: ids.train.id,
        validation: ids.validation.id,
        test: ids.test.id,
        head: head.id,
      });
      say(
        `  task      ${task.name.padEnd(12)} ${String(classes).padStart(2)} classes  train ${ids.train.examples} / validation ${ids.validation.examples} / test ${ids.test.examples}  ${head.id}: ${headNote}`,
      );
    }
  } finally {
    probes?.dispose();
  }
  return { backbone, tasks };
}
