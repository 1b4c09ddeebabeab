/** Deterministic uniform [0, 1) stream, so a seed reproduces the same A₀ and data order everywhere. */
export { seededUniform } from '../tensors/index.ts';

/** A 32-bit seed per (seed, name): a module's A₀ does not depend on which other modules are targeted. */
export function deriveSeed(seed: number, name: string): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Fisher–Yates permutation of 0..n-1. */
export function shuffled(n: number, random: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
