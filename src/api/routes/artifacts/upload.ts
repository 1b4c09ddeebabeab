// Reads a multipart upload part by part: each file part is named by its file name and streamed to
// the store's staging area (hashed on the way, limits from config.uploads); the few text fields a
// route accepts are collected. Any failure discards everything staged so far.
import type { FastifyRequest } from 'fastify';
import type { UploadLimits } from '../../../config.ts';
import {
  type ArtifactStore,
  type StagedUpload,
  type StoredArtifactKind,
  UploadTooLargeError,
  allowedFileNames,
  isAllowedFileName,
  isJsonFileName,
} from '../../../store/index.ts';
import { ApiProblem } from '../../errors.ts';

export interface ReceivedUpload {
  upload: StagedUpload;
  fields: Record<string, string>;
}

export async function receiveUpload(
  request: FastifyRequest,
  store: ArtifactStore,
  kind: StoredArtifactKind,
  limits: UploadLimits,
  fieldNames: readonly string[],
): Promise<ReceivedUpload> {
  const upload = store.stage(kind);
  const fields: Record<string, string> = {};
  try {
    const parts = request.parts({
      limits: {
        fileSize: limits.maxFileBytes,
        files: limits.maxFiles,
        fields: 16,
        fieldSize: limits.maxFieldBytes,
        parts: limits.maxFiles + fieldNames.length,
      },
    });
    for await (const part of parts) {
      if (part.type === 'field') {
        if (!fieldNames.includes(part.fieldname)) {
          throw new ApiProblem('invalid-upload', `unknown field ${part.fieldname}`, {
            field: part.fieldname,
          });
        }
        if (part.valueTruncated) {
          throw new ApiProblem('invalid-upload', `field ${part.fieldname} is too long`, {
            field: part.fieldname,
          });
        }
        fields[part.fieldname] = String(part.value);
        continue;
      }
      const name = part.fieldname;
      if (!isAllowedFileName(kind, name)) {
        part.file.resume();
        throw new ApiProblem(
          'unexpected-file',
          `${name} is not part of a ${kind} upload (expected ${allowedFileNames(kind)})`,
          { file: name },
        );
      }
      const maxBytes = isJsonFileName(name)
        ? Math.min(limits.maxJsonBytes, limits.maxFileBytes)
        : limits.maxFileBytes;
      await upload.addFile(name, part.file, maxBytes);
      // busboy stops at the configured limit and marks the stream truncated rather than failing it.
      if (part.file.truncated) throw new UploadTooLargeError(name, limits.maxFileBytes);
    }
    return { upload, fields };
  } catch (error) {
    await upload.discard();
    throw error;
  }
}
