// ULID-style ids: 10 characters of millisecond time then 16 random, Crockford base32, so that ids
// sort lexicographically by creation time (the per-kind indexes page over that order).
import { randomBytes } from 'node:crypto';
import type { StoredArtifactKind } from './types.ts';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export const ID_PREFIX: Record<StoredArtifactKind, string> = {
  model: 'mdl',
  adapter: 'adp',
  dataset: 'dst',
  report: 'rpt',
};

const ID_PATTERN = /^(mdl|adp|dst|rpt)_[0-9a-hjkmnp-tv-z]{26}$/;

let lastTime = -1;
let lastRandom: number[] = [];

function encodeTime(ms: number): string {
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[ms % 32] + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

/** Within one millisecond the random part is incremented, so ids made by this process stay ordered. */
function nextRandom(now: number): number[] {
  if (now === lastTime) {
    for (let i = lastRandom.length - 1; i >= 0; i--) {
      if (lastRandom[i] < 31) {
        lastRandom[i]++;
        return lastRandom;
      }
      lastRandom[i] = 0;
    }
  }
  lastTime = now;
  lastRandom = [...randomBytes(16)].map((byte) => byte % 32);
  return lastRandom;
}

export function newArtifactId(kind: StoredArtifactKind, now = Date.now()): string {
  const random = nextRandom(now)
    .map((digit) => ALPHABET[digit])
    .join('');
  return `${ID_PREFIX[kind]}_${encodeTime(now)}${random}`;
}

export function isArtifactId(value: string): boolean {
  return ID_PATTERN.test(value);
}

export function kindOfId(id: string): StoredArtifactKind | null {
  if (!isArtifactId(id)) return null;
  const prefix = id.slice(0, 3);
  return (Object.keys(ID_PREFIX) as StoredArtifactKind[]).find((kind) => ID_PREFIX[kind] === prefix) ?? null;
}
