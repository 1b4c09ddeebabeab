// A small seeded generator (mulberry32) for the
// randomized SVD when no recipe stream is given, and the Gaussian draws it needs.
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

/** mulberry32: uniform doubles in [0, 1) from a 32-bit seed. */
export function seededStream(seed: number): RandomStream {
  let state = seed >>> 0;
  return {
    next() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** Standard normal draws by Box–Muller. */
export function gaussian(stream: RandomStream): number {
  let u = stream.next();
  while (u <= 0) u = stream.next();
  const v = stream.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
