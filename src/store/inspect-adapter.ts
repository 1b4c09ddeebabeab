// Validates a PEFT LoRA adapter's files and summarises them: every safetensors header, the
// adapter config, and that every module has both factors with agreeing ranks. Headers only.
import { Checkpoint, SafetensorsFile } from '../tensors/index.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, LORAFUSE_EXTRAS, LORAFUSE_INIT } from './artifact-layout.ts';
import { ArtifactValidationError } from './errors.ts';
import { validateTaskHeads } from './inspect-head.ts';
import { readJsonObject } from './read-json.ts';
import { asValidationError, summariseTensors } from './tensor-summary.ts';
import type { ArtifactSummary } from './types.ts';

/** `base_model.model.<module>.lora_A.weight` (PEFT also writes `lora_A.<adapter>.weight` in memory). */
const LORA_KEY = /^(?:base_model\.model\.)?(.+)\.lora_([AB])\.weight$/;

export interface LoraModuleShape {
  module: string;
  /** lora_A: [r, in, ...]; lora_B: [out, r, ...]. */
  a: number[];
  b: number[];
}

function positiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

function checkConfig(config: Record<string, unknown>): number {
  const peftType = config.peft_type;
  if (peftType !== undefined && peftType !== 'LORA') {
    throw new ArtifactValidationError('invalid-adapter', `${ADAPTER_CONFIG}: peft_type must be "LORA"`, {
      file: ADAPTER_CONFIG,
    });
  }
  if (!positiveInteger(config.r)) {
    throw new ArtifactValidationError('invalid-adapter', `${ADAPTER_CONFIG}: r must be a positive integer`, {
      file: ADAPTER_CONFIG,
    });
  }
  const alpha = config.lora_alpha;
  if (alpha !== undefined && (typeof alpha !== 'number' || !Number.isFinite(alpha))) {
    throw new ArtifactValidationError('invalid-adapter', `${ADAPTER_CONFIG}: lora_alpha must be a number`, {
      file: ADAPTER_CONFIG,
    });
  }
  return config.r;
}

/** The LoRA modules of an adapter checkpoint, checked pairwise. */
export function loraModules(weights: { names(): string[]; info(name: string): { shape: number[] } }) {
  const factors = new Map<string, { a?: number[]; b?: number[] }>();
  for (const name of weights.names()) {
    const match = LORA_KEY.exec(name);
    if (!match) continue;
    const entry = factors.get(match[1]) ?? {};
    entry[match[2] === 'A' ? 'a' : 'b'] = weights.info(name).shape;
    factors.set(match[1], entry);
  }
  const modules: LoraModuleShape[] = [];
  for (const [module, { a, b }] of factors) {
    if (!a || !b) {
      throw new ArtifactValidationError(
        'invalid-adapter',
        `module ${module} has lora_${a ? 'A' : 'B'} but no lora_${a ? 'B' : 'A'}`,
        { file: ADAPTER_WEIGHTS, module },
      );
    }
    if (a.length < 2 || b.length < 2 || a[0] !== b[1]) {
      throw new ArtifactValidationError(
        'invalid-adapter',
        `module ${module}: lora_A [${a}] and lora_B [${b}] disagree on the rank`,
        { file: ADAPTER_WEIGHTS, module },
      );
    }
    modules.push({ module, a, b });
  }
  return modules.sort((x, y) => (x.module < y.module ? -1 : x.module > y.module ? 1 : 0));
}

async function validateSafetensors(files: Record<string, string>, name: string): Promise<void> {
  try {
    const file = await SafetensorsFile.open(files[name]);
    await file.close();
  } catch (error) {
    throw asValidationError(error, files);
  }
}

/** `files`: file name -> path of every file of the adapter. */
export async function inspectAdapter(files: Record<string, string>): Promise<ArtifactSummary> {
  for (const required of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) {
    if (!files[required]) {
      throw new ArtifactValidationError('missing-file', `an adapter needs ${required}`, { file: required });
    }
  }
  const config = await readJsonObject(files[ADAPTER_CONFIG], ADAPTER_CONFIG);
  const rank = checkConfig(config);
  if (files[LORAFUSE_EXTRAS]) await readJsonObject(files[LORAFUSE_EXTRAS], LORAFUSE_EXTRAS);
  if (files[LORAFUSE_INIT]) await validateSafetensors(files, LORAFUSE_INIT);
  await validateTaskHeads(files);
  let weights: Checkpoint;
  try {
    weights = await Checkpoint.openFiles({ [ADAPTER_WEIGHTS]: files[ADAPTER_WEIGHTS] }, 'adapter_model');
  } catch (error) {
    throw asValidationError(error, files);
  }
  try {
    const modules = loraModules(weights);
    if (modules.length === 0) {
      throw new ArtifactValidationError(
        'invalid-adapter',
        `${ADAPTER_WEIGHTS} holds no lora_A/lora_B weights`,
        {
          file: ADAPTER_WEIGHTS,
        },
      );
    }
    return { ...summariseTensors(weights), rank, targets: modules.map((m) => m.module), config };
  } finally {
    await weights.close();
  }
}
