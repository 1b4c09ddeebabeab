// A small seeded generator (mulberry32) for the
// randomized SVD when no recipe stream is given, and the Gaussian draws it needs.
import { seededUniform } from '../../tensors/index.ts';
import type { RandomStream } from '../method.ts';

/** FNV-1a hash of a string, as a 32-bit seed. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Uniform doubles in [0, 1) from a 32-bit seed, as a RandomStream. */
export function seededStream(seed: number): RandomStream {
  return { next: seededUniform(seed) };
}

/** Standard normal draws by Box–Muller. */
export function gaussian(stream: RandomStream): number {
  let u = stream.next();
  while (u <= 0) u = stream.next();
  const v = stream.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
