// Φ(x) and φ(x) in float32 as tf ops (Eigen's rational erf), for exact-erf GELU where the SIMD kernels do not serve.
import * as tf from '@tensorflow/tfjs';
import { constant } from './constants.ts';

export const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

// Eigen's float erf: erf(u) = u·P(u²)/Q(u²) on u ∈ [−4, 4], max error 4.2e-7 against math.erf (checked in float32).
// Rewritten for Φ(x) = 0.5 + 0.5·erf(x/√2) so the substitution u = x/√2 and the 0.5 fold into the coefficients.
// The SIMD kernels (../simd) evaluate the same polynomials in the same order.
const ERF_P = [
  -1.60960333262415e-2, -2.95459980854025e-3, -7.34990630326855e-4, -5.69250639462346e-5,
  -2.10102402082508e-6, 2.77068142495902e-8, -2.72614225801306e-10,
];
const ERF_Q = [
  -1.42647390514189e-2, -7.37332916720468e-3, -1.68282697438203e-3, -2.13374055278905e-4,
  -1.45660718464996e-5,
];
export const CDF_P = ERF_P.map((c, i) => (0.5 * c) / Math.SQRT2 / 2 ** i);
export const CDF_Q = ERF_Q.map((c, i) => c / 2 ** i);
/** Beyond ±4√2, Φ is 0 or 1 in float32. */
export const CDF_CLIP = 4 * Math.SQRT2;

/** Horner's rule in t with cached scalar coefficients (lowest degree first). */
function polynomial(t: tf.Tensor, coefficients: number[]): tf.Tensor {
  let acc: tf.Tensor = constant(coefficients[coefficients.length - 1]);
  for (let i = coefficients.length - 2; i >= 0; i--) acc = tf.add(tf.mul(acc, t), constant(coefficients[i]));
  return acc;
}

/**
 * The standard normal CDF Φ(x) from multiplies, adds and one divide: wasm's Erf kernel is scalar libm code, about
 * 30× slower per element than a vectorised multiply.
 */
export function normalCdf(x: tf.Tensor): tf.Tensor {
  const clipped = tf.clipByValue(x, -CDF_CLIP, CDF_CLIP);
  const square = tf.mul(clipped, clipped);
  const ratio = tf.div(tf.mul(clipped, polynomial(square, CDF_P)), polynomial(square, CDF_Q));
  return tf.add(ratio, constant(0.5));
}

/** e^z for z ≤ 0 as σ(z)/σ(−z): wasm's Sigmoid is vectorised, its Exp is scalar libm code (~4× slower here). */
function expNonPositive(z: tf.Tensor): tf.Tensor {
  return tf.div(tf.sigmoid(z), tf.sigmoid(tf.neg(z)));
}

/** The standard normal density φ(x) = e^(−x²/2)/√(2π). */
export function normalDensity(x: tf.Tensor): tf.Tensor {
  return tf.mul(expNonPositive(tf.mul(tf.mul(x, x), constant(-0.5))), constant(INV_SQRT_2PI));
}
