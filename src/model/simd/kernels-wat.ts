// The WebAssembly text of lorafuse's SIMD kernels. They run on the wasm backend's own memory (imported), reading
// and writing tensors in place by their heap offsets, so no data is copied. Each replaces a chain of tfjs kernels
// whose dispatch and memory passes, not arithmetic, dominated a training step: GELU was ~35 element-wise kernels
// over the widest activation of every layer.
import { CDF_CLIP, CDF_P, CDF_Q, INV_SQRT_2PI } from '../nn/normal-cdf.ts';
import { elementwise, exp, get, horner, laneSum, splat } from './wat.ts';

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

/** A loop over the bytes [0, end) of one row in 16-byte steps, with the byte offset in $col. */
function eachVector(end: string, body: string): string {
  return `(local.set $col (i32.const 0))
    (block $colsDone (loop $cols
      (br_if $colsDone (i32.ge_u (local.get $col) ${end}))
      ${body}
      (local.set $col (i32.add (local.get $col) (i32.const 16)))
      (br $cols)))`;
}

const at = (base: string) => `(i32.add ${base} (local.get $col))`;
const load = (base: string) => `(v128.load ${at(base)})`;

/**
 * layer_norm(x, gamma, beta, out, xhat, invStd, rows, width, eps): PyTorch's LayerNorm over rows of width
 * (a multiple of 4) floats: biased variance, eps inside the square root. Also writes x̂ and 1/σ per row for the
 * backward pass.
 */
const LAYER_NORM = `(func (export "layer_norm") (param $x i32) (param $gamma i32) (param $beta i32) (param $out i32)
    (param $xhat i32) (param $inv i32) (param $rows i32) (param $width i32) (param $eps f32)
    (local $row i32) (local $col i32) (local $rowBytes i32) (local $base i32)
    (local $mean f32) (local $invStd f32) (local $acc v128) (local $d v128) (local $m v128) (local $s v128)
    (local $hsum v128)
    (local.set $rowBytes (i32.shl (local.get $width) (i32.const 2)))
    (block $rowsDone (loop $rowsLoop
      (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
      (local.set $base (i32.mul (local.get $row) (local.get $rowBytes)))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      ${eachVector('(local.get $rowBytes)', `(local.set $acc (f32x4.add (local.get $acc) ${load('(i32.add (local.get $x) (local.get $base))')}))`)}
      (local.set $mean (f32.div ${laneSum('(local.get $acc)')} (f32.convert_i32_u (local.get $width))))
      (local.set $m (f32x4.splat (local.get $mean)))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      ${eachVector(
        '(local.get $rowBytes)',
        `(local.set $d (f32x4.sub ${load('(i32.add (local.get $x) (local.get $base))')} (local.get $m)))
         (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $d) (local.get $d))))`,
      )}
      (local.set $invStd (f32.div (f32.const 1) (f32.sqrt (f32.add
        (f32.div ${laneSum('(local.get $acc)')} (f32.convert_i32_u (local.get $width))) (local.get $eps)))))
      (local.set $s (f32x4.splat (local.get $invStd)))
      ${eachVector(
        '(local.get $rowBytes)',
        `(local.set $d (f32x4.mul (f32x4.sub ${load('(i32.add (local.get $x) (local.get $base))')} (local.get $m)) (local.get $s)))
         (v128.store ${at('(i32.add (local.get $xhat) (local.get $base))')} (local.get $d))
         (v128.store ${at('(i32.add (local.get $out) (local.get $base))')}
           (f32x4.add (f32x4.mul (local.get $d) ${load('(local.get $gamma)')}) ${load('(local.get $beta)')}))`,
      )}
      (f32.store (i32.add (local.get $inv) (i32.shl (local.get $row) (i32.const 2))) (local.get $invStd))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rowsLoop))))`;

/**
 * layer_norm_grad(dy, xhat, invStd, gamma, dx, dgamma, dbeta, rows, width): with ĝ = γ·dy,
 * dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))/σ per row; dγ = Σ_rows dy·x̂, dβ = Σ_rows dy.
 */
const LAYER_NORM_GRAD = `(func (export "layer_norm_grad") (param $dy i32) (param $xhat i32) (param $inv i32)
    (param $gamma i32) (param $dx i32) (param $dgamma i32) (param $dbeta i32) (param $rows i32) (param $width i32)
    (local $row i32) (local $col i32) (local $rowBytes i32) (local $base i32)
    (local $sumG v128) (local $sumGX v128) (local $g v128) (local $dyv v128) (local $xh v128)
    (local $m1 v128) (local $m2 v128) (local $s v128) (local $hsum v128)
    (local.set $rowBytes (i32.shl (local.get $width) (i32.const 2)))
    ${eachVector(
      '(local.get $rowBytes)',
      `(v128.store ${at('(local.get $dgamma)')} (v128.const i32x4 0 0 0 0))
       (v128.store ${at('(local.get $dbeta)')} (v128.const i32x4 0 0 0 0))`,
    )}
    (block $rowsDone (loop $rowsLoop
      (br_if $rowsDone (i32.ge_u (local.get $row) (local.get $rows)))
      (local.set $base (i32.mul (local.get $row) (local.get $rowBytes)))
      (local.set $sumG (v128.const i32x4 0 0 0 0))
      (local.set $sumGX (v128.const i32x4 0 0 0 0))
      ${eachVector(
        '(local.get $rowBytes)',
        `(local.set $dyv ${load('(i32.add (local.get $dy) (local.get $base))')})
         (local.set $xh ${load('(i32.add (local.get $xhat) (local.get $base))')})
         (local.set $g (f32x4.mul (local.get $dyv) ${load('(local.get $gamma)')}))
         (local.set $sumG (f32x4.add (local.get $sumG) (local.get $g)))
         (local.set $sumGX (f32x4.add (local.get $sumGX) (f32x4.mul (local.get $g) (local.get $xh))))
         (v128.store ${at('(local.get $dgamma)')}
           (f32x4.add ${load('(local.get $dgamma)')} (f32x4.mul (local.get $dyv) (local.get $xh))))
         (v128.store ${at('(local.get $dbeta)')} (f32x4.add ${load('(local.get $dbeta)')} (local.get $dyv)))`,
      )}
      (local.set $m1 (f32x4.splat (f32.div ${laneSum('(local.get $sumG)')} (f32.convert_i32_u (local.get $width)))))
      (local.set $m2 (f32x4.splat (f32.div ${laneSum('(local.get $sumGX)')} (f32.convert_i32_u (local.get $width)))))
      (local.set $s (f32x4.splat (f32.load (i32.add (local.get $inv) (i32.shl (local.get $row) (i32.const 2))))))
      ${eachVector(
        '(local.get $rowBytes)',
        `(local.set $g (f32x4.mul ${load('(i32.add (local.get $dy) (local.get $base))')} ${load('(local.get $gamma)')}))
         (v128.store ${at('(i32.add (local.get $dx) (local.get $base))')}
           (f32x4.mul (f32x4.sub (f32x4.sub (local.get $g) (local.get $m1))
             (f32x4.mul ${load('(i32.add (local.get $xhat) (local.get $base))')} (local.get $m2))) (local.get $s)))`,
      )}
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rowsLoop))))`;

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

  ${LAYER_NORM}

  ${LAYER_NORM_GRAD}
)`;
