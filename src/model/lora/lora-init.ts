// LoRA's initial factors as PEFT draws them (Kaiming-uniform A, zero B), seeded by run seed and module name.
import { deriveSeed, seededUniform } from '../random.ts';

/**
 * PEFT's default LoRA init: A ~ kaiming_uniform(a=√5) = U(−1/√in, 1/√in), B = 0. A is drawn from (seed, module
 * name), so adapters of tasks meant to be merged share A₀ when they share the seed.
 */
export function initLoraFactors(
  module: string,
  inFeatures: number,
  outFeatures: number,
  rank: number,
  seed: number,
): { a: Float32Array; b: Float32Array } {
  const uniform = seededUniform(deriveSeed(seed, module));
  const bound = 1 / Math.sqrt(inFeatures);
  const a = new Float32Array(rank * inFeatures);
  for (let i = 0; i < a.length; i++) a[i] = (uniform() * 2 - 1) * bound;
  return { a, b: new Float32Array(outFeatures * rank) };
}
