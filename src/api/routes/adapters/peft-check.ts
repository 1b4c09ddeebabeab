// PEFT semantics of an uploaded adapter (merge-core's reading: rank/alpha patterns, DoRA and
// lora_bias refused) and, when a base model is named, that every module fits it.
import { checkAdapterAgainstBase, describeAdapter, parseAdapterConfig } from '../../../merge/index.ts';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  type ArtifactRecord,
  type ArtifactStore,
  MODEL_CONFIG,
} from '../../../store/index.ts';
import { readJsonObject } from '../../../store/read-json.ts';
import { Checkpoint } from '../../../tensors/index.ts';

/** `files`: the staged adapter files (name -> path). Throws AdapterError (module named). */
export async function checkPeftAdapter(
  store: ArtifactStore,
  files: Record<string, string>,
  base: ArtifactRecord | null,
): Promise<void> {
  const config = parseAdapterConfig(await readJsonObject(files[ADAPTER_CONFIG], ADAPTER_CONFIG));
  const weights = await Checkpoint.openFiles({ [ADAPTER_WEIGHTS]: files[ADAPTER_WEIGHTS] }, 'adapter_model');
  try {
    const layout = describeAdapter(config, weights);
    if (!base) return;
    const basePaths = store.fileRefs(base);
    delete basePaths[MODEL_CONFIG];
    const model = await Checkpoint.openFiles(basePaths);
    try {
      checkAdapterAgainstBase(layout, model);
    } finally {
      await model.close();
    }
  } finally {
    await weights.close();
  }
}
