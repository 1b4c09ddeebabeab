// Counts and dtypes of a checkpoint's tensors, and the translation of tensor-reader errors.
import path from 'node:path';
import { SafetensorsError } from '../tensors/index.ts';
import { ArtifactValidationError } from './errors.ts';
import type { ArtifactSummary } from './types.ts';

interface TensorSource {
  names(): string[];
  info(name: string): { dtype: string; numel: number };
}

export function summariseTensors(source: TensorSource): ArtifactSummary {
  const dtypes = new Set<string>();
  let parameterCount = 0;
  const names = source.names();
  for (const name of names) {
    const info = source.info(name);
    dtypes.add(info.dtype);
    parameterCount += info.numel;
  }
  return { tensorCount: names.length, parameterCount, dtypes: [...dtypes].sort() };
}

/** SafetensorsError names an absolute path; clients know their files by name. */
export function asValidationError(error: unknown, files: Record<string, string>): Error {
  if (error instanceof ArtifactValidationError) return error;
  if (error instanceof SafetensorsError) {
    const file =
      Object.entries(files).find(([, filePath]) => filePath === error.file)?.[0] ??
      (error.file ? path.basename(error.file) : undefined);
    return new ArtifactValidationError('invalid-safetensors', withoutPaths(error.message, files), {
      file,
      tensor: error.tensor,
    });
  }
  return error as Error;
}

/** Replaces staged absolute paths with the client's file names, so no server path leaks. */
function withoutPaths(message: string, files: Record<string, string>): string {
  let out = message;
  for (const [name, filePath] of Object.entries(files)) out = out.split(filePath).join(name);
  return out;
}
