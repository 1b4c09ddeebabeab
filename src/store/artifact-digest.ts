// An artifact's content digest: the sha256 of its file manifest, one `<sha256>  <name>\n` line per file
// sorted by name (what `sha256sum` prints), so a client can tell whether the service already holds a
// folder before uploading it, and anyone can recompute it with `sha256sum config.json model.safetensors | sha256sum`.
import { createHash } from 'node:crypto';
import type { ArtifactFile } from './types.ts';

export const DIGEST_PATTERN = /^[0-9a-f]{64}$/;

export function artifactDigest(files: ReadonlyArray<Pick<ArtifactFile, 'name' | 'sha256'>>): string {
  const lines = [...files]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((file) => `${file.sha256}  ${file.name}\n`);
  return createHash('sha256').update(lines.join('')).digest('hex');
}
