// Validates a stored task head (head.safetensors: `weight` [classes, features], optional `bias` [classes],
// floating point) and a merge's per-task heads file (lorafuse_heads.safetensors: `<task>.weight` and
// `<task>.bias` per task). Headers only.
import { SafetensorsFile, type TensorInfo } from '../tensors/index.ts';
import { HEAD_FILE, TASK_HEADS_FILE } from './artifact-layout.ts';
import { ArtifactValidationError } from './errors.ts';
import { asValidationError, summariseTensors } from './tensor-summary.ts';
import type { ArtifactSummary, HeadSummary } from './types.ts';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

function invalid(file: string, message: string, tensor?: string): ArtifactValidationError {
  return new ArtifactValidationError('invalid-head', message, { file, tensor });
}

/** Checks one head's weight (and bias) tensors; returns its shape. */
export function checkHeadTensors(
  file: string,
  weight: TensorInfo | undefined,
  bias: TensorInfo | undefined,
  names: { weight: string; bias: string },
): HeadSummary {
  if (!weight) throw invalid(file, `${file} has no ${names.weight} tensor [classes, features]`, names.weight);
  if (!FLOAT_DTYPES.has(weight.dtype) || weight.shape.length !== 2 || weight.numel === 0) {
    throw invalid(
      file,
      `${names.weight} must be a non-empty floating-point [classes, features] matrix, got ${weight.dtype} [${weight.shape}]`,
      names.weight,
    );
  }
  const [classes, features] = weight.shape;
  if (bias && (!FLOAT_DTYPES.has(bias.dtype) || bias.shape.length !== 1 || bias.shape[0] !== classes)) {
    throw invalid(
      file,
      `${names.bias} must be floating point [${classes}], got ${bias.dtype} [${bias.shape}]`,
      names.bias,
    );
  }
  return { classes, features, bias: bias !== undefined };
}

/** `files`: file name -> path of a head artifact. */
export async function inspectHead(files: Record<string, string>): Promise<ArtifactSummary> {
  if (!files[HEAD_FILE])
    throw new ArtifactValidationError('missing-file', `a head needs ${HEAD_FILE}`, { file: HEAD_FILE });
  let file: SafetensorsFile | undefined;
  try {
    file = await SafetensorsFile.open(files[HEAD_FILE]);
    const opened = file;
    const infos = new Map(opened.names().map((name) => [name, opened.info(name)]));
    for (const name of infos.keys()) {
      if (name !== 'weight' && name !== 'bias') {
        throw invalid(HEAD_FILE, `${name} is not a head tensor (expected weight and optionally bias)`, name);
      }
    }
    const head = checkHeadTensors(HEAD_FILE, infos.get('weight'), infos.get('bias'), {
      weight: 'weight',
      bias: 'bias',
    });
    return { ...summariseTensors(opened), head };
  } catch (error) {
    throw asValidationError(error, files);
  } finally {
    await file?.close();
  }
}

/** Validates lorafuse_heads.safetensors when an adapter or model carries one. */
export async function validateTaskHeads(files: Record<string, string>): Promise<void> {
  if (!files[TASK_HEADS_FILE]) return;
  let file: SafetensorsFile | undefined;
  try {
    file = await SafetensorsFile.open(files[TASK_HEADS_FILE]);
    const opened = file;
    const infos = new Map(opened.names().map((name) => [name, opened.info(name)]));
    const tasks = [...infos.keys()]
      .filter((n) => n.endsWith('.weight'))
      .map((n) => n.slice(0, -'.weight'.length));
    for (const name of infos.keys()) {
      if (!/\.(weight|bias)$/.test(name))
        throw invalid(TASK_HEADS_FILE, `${name} is not <task>.weight or <task>.bias`, name);
    }
    for (const task of tasks) {
      checkHeadTensors(TASK_HEADS_FILE, infos.get(`${task}.weight`), infos.get(`${task}.bias`), {
        weight: `${task}.weight`,
        bias: `${task}.bias`,
      });
    }
  } catch (error) {
    throw asValidationError(error, files);
  } finally {
    await file?.close();
  }
}
