// The one small seeded generator lorafuse uses wherever a run must repeat exactly (A₀ of L-LoRA, data
// order, SVD range finders, demo and test data): mulberry32, uniform doubles in [0, 1) from a 32-bit seed.
// Merge methods that draw per element (DARE, DELLA) use src/merge/random.ts, keyed by tensor and model.

export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
