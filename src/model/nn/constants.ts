// Cached scalar tensors, so hot loops do not allocate a new tensor for every constant.
import * as tf from '@tensorflow/tfjs';

const cache = new Map<number, tf.Scalar>();

/**
 * A scalar tensor kept for the life of the process. tf.mul(x, 0.5) creates and uploads a scalar tensor on every
 * call (about 60 µs on wasm, more than the multiply itself); hot paths reuse one per constant instead.
 */
export function constant(value: number): tf.Scalar {
  let scalar = cache.get(value);
  if (!scalar || scalar.isDisposed) {
    scalar = tf.keep(tf.scalar(value));
    cache.set(value, scalar);
  }
  return scalar;
}
