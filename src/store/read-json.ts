// JSON side files (config.json, adapter_config.json, the shard index) are small: read whole,
// decoded as strict UTF-8, held to the JSON size and depth limits and required to be a JSON object.
import { type FileRef, parseBoundedJson, readWhole } from '../tensors/index.ts';
import { ArtifactValidationError } from './errors.ts';

/** `file`: a path, or a stored blob's RangeSource (read whole: these files are small). */
export async function readJsonObject(file: FileRef, name: string): Promise<Record<string, unknown>> {
  const bytes = await readWhole(file);
  let value: unknown;
  try {
    value = parseBoundedJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new ArtifactValidationError(
      'invalid-json',
      `${name} is not valid UTF-8 JSON: ${(error as Error).message}`,
      {
        file: name,
      },
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ArtifactValidationError('invalid-json', `${name} must hold a JSON object`, { file: name });
  }
  return value as Record<string, unknown>;
}
