// The WebAssembly text of lorafuse's SIMD kernels. They run on the wasm backend's own memory (imported), reading
// and writing tensors in place by their heap offsets, so no data is copied. Each replaces a chain of tfjs kernels
// whose dispatch and memory passes, not arithmetic, dominated a training step: GELU was ~35 element-wise kernels
// over the widest activation of every layer.
import { CDF_CLIP, CDF_P, CDF_Q, INV_SQRT_2PI } from '../nn/normal-cdf.ts';
import { elementwise, exp, get, horner, splat } from './wat.ts';

/** Φ(x) for the v128 local `x`, as the tf-op normalCdf computes it (same polynomials, same order). */
function normalCdf(x: string): string {
  return `(block (result v128)
    (local.set $c (f32x4.min (f32x4.max ${get(x)} ${splat(-CDF_CLIP)}) ${splat(CDF_CLIP)}))
    (local.set $t (f32x4.mul (local.get $c) (local.get $c)))
    (f32x4.add (f32x4.div (f32x4.mul (local.get $c) ${horner('$t', CDF_P)}) ${horner('$t', CDF_Q)}) ${splat(0.5)}))`;
}

/** φ(x) = e^(−x²/2)/√(2π) for the v128 local `x`. */
function normalDensity(x: string): string {
  return `(block (result v128)
    (local.set $z (f32x4.mul (f32x4.mul ${get(x)} ${get(x)}) ${splat(-0.5)}))
    (f32x4.mul ${exp('$z', '$e')} ${splat(INV_SQRT_2PI)}))`;
}

const GELU_LOCALS = ['$c', '$t', '$z', '$ek', '$er'];

export const KERNELS_WAT = `(module
  (import "env" "memory" (memory 1))

  ;; gelu_erf(x, out, n): out = x·Φ(x)
  ${elementwise('gelu_erf', ['x'], GELU_LOCALS, `(f32x4.mul ${get('$v_x')} ${normalCdf('$v_x')})`)}

  ;; gelu_erf_grad(x, dy, out, n): out = dy·(Φ(x) + x·φ(x))
  ${elementwise(
    'gelu_erf_grad',
    ['x', 'dy'],
    GELU_LOCALS,
    `(f32x4.mul ${get('$v_dy')} (f32x4.add ${normalCdf('$v_x')} (f32x4.mul ${get('$v_x')} ${normalDensity('$v_x')})))`,
  )}
)`;
