// The LoRA and L-LoRA (linearized) updates a target linear layer adds, s·B·A·x and its first-order expansion.
import { ModelInputError } from '../errors.ts';
import * as tf from '@tensorflow/tfjs';
import { constant } from '../nn/constants.ts';

/**
 * One LoRA-adapted linear module, factors held transposed for flag-free matMuls: aT = Aᵀ [in, r], bT = Bᵀ [r, out].
 * `linearized` makes it an L-LoRA module: the update is the first-order Taylor expansion of s·B·A in (A, B)
 * around the expansion point (A₀, B₀), which must then be given.
 */
export interface LoraModule {
  module: string;
  rank: number;
  scale: number;
  aT: tf.Tensor2D;
  bT: tf.Tensor2D;
  linearized: boolean;
  a0T?: tf.Tensor2D;
  b0T?: tf.Tensor2D;
  /** B₀ = 0 (PEFT's default init): the linearized update is s·B·A₀ and A gets no gradient. */
  b0IsZero?: boolean;
}

/**
 * The module's additive update for inputs x [N, in]: s·B·A·x, or its linearization around (A₀, B₀). The scale
 * multiplies the small [r, out] factor, not the [N, out] product (one pass over r·out numbers, forward and back).
 */
export function loraUpdate(x: tf.Tensor2D, lora: LoraModule): tf.Tensor2D {
  if (!lora.linearized) return tf.matMul(tf.matMul(x, lora.aT), tf.mul(lora.bT, constant(lora.scale)));
  if (!lora.a0T || !lora.b0T)
    throw new ModelInputError(`L-LoRA module ${lora.module} has no expansion point`);
  return linearizedUpdate(x, lora.aT, lora.bT, lora.a0T, lora.b0T, lora.scale, lora.b0IsZero === true);
}

/**
 * s·[B₀A₀ + (B−B₀)A₀ + B₀(A−A₀)]x = s·[(B−B₀)·(A₀x) + B₀·(Ax)]. With B₀ = 0 (`b0IsZero`) the second term is
 * exactly zero and skipped, so the step costs no more than plain LoRA's.
 */
export function linearizedUpdate(
  x: tf.Tensor2D,
  aT: tf.Tensor2D,
  bT: tf.Tensor2D,
  a0T: tf.Tensor2D,
  b0T: tf.Tensor2D,
  scale: number,
  b0IsZero: boolean,
): tf.Tensor2D {
  const projected0 = tf.matMul(x, a0T);
  if (b0IsZero) return tf.matMul(projected0, tf.mul(bT, constant(scale)));
  const alongB = tf.matMul(projected0, tf.sub(bT, b0T));
  const alongA = tf.matMul(tf.matMul(x, aT), b0T);
  return tf.mul(tf.add(alongB, alongA), constant(scale));
}
