// The WebAssembly text of lorafuse's SIMD kernels. They run on the wasm backend's own memory (imported), reading
// and writing tensors in place by their heap offsets, so no data is copied. Each replaces a chain of tfjs kernels
// whose dispatch and memory passes, not arithmetic, dominated a training step: GELU was ~35 element-wise kernels
// over the widest activation of every layer.
import { ADAMW_ATTRS } from './kernel-names.ts';
import { MATMUL, TRANSPOSE } from './matmul-wat.ts';
import { CDF_CLIP, CDF_P, CDF_Q, INV_SQRT_2PI } from '../nn/normal-cdf.ts';
import {
  elementwise,
  exp,
  get,
  horner,
  laneMax,
  laneSum,
  range,
  scalarsTimesRows,
  splat,
  walk,
} from './wat.ts';

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

const GELU_LOCALS = ['$c', '$t', '$z', '$ek', '$er', '$phi'];

/** A loop over the bytes [0, end) of one row in 16-byte steps, with the byte offset in $col. */
function eachVector(end: string, body: string): string {
  return range('$col', end, 16, body);
}

const at = (base: string) => `(i32.add ${base} (local.get $col))`;
const load = (base: string) => `(v128.load ${at(base)})`;

/** sum_squares(x, n) → f64: Σ x² accumulated in float64 (a gradient's share of the global norm). */
const SUM_SQUARES = `(func (export "sum_squares") (param $x i32) (param $n i32) (result f64)
    (local $byte i32) (local $end i32) (local $vectorEnd i32) (local $v v128) (local $lo v128) (local $hi v128)
    (local $tail f64)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vectorEnd (i32.and (local.get $end) (i32.const -16)))
    (local.set $lo (v128.const i32x4 0 0 0 0))
    (local.set $hi (v128.const i32x4 0 0 0 0))
    (block $vectorsDone (loop $vectors
      (br_if $vectorsDone (i32.ge_u (local.get $byte) (local.get $vectorEnd)))
      (local.set $v (v128.load (i32.add (local.get $x) (local.get $byte))))
      (local.set $lo (f64x2.add (local.get $lo)
        (f64x2.mul (f64x2.promote_low_f32x4 (local.get $v)) (f64x2.promote_low_f32x4 (local.get $v)))))
      (local.set $v (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
      (local.set $hi (f64x2.add (local.get $hi)
        (f64x2.mul (f64x2.promote_low_f32x4 (local.get $v)) (f64x2.promote_low_f32x4 (local.get $v)))))
      (local.set $byte (i32.add (local.get $byte) (i32.const 16)))
      (br $vectors)))
    (block $tailDone (loop $tailLoop
      (br_if $tailDone (i32.ge_u (local.get $byte) (local.get $end)))
      (local.set $tail (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $byte)))))
      (local.set $lo (f64x2.replace_lane 0 (local.get $lo)
        (f64.add (f64x2.extract_lane 0 (local.get $lo)) (f64.mul (local.get $tail) (local.get $tail)))))
      (local.set $byte (i32.add (local.get $byte) (i32.const 4)))
      (br $tailLoop)))
    (local.set $lo (f64x2.add (local.get $lo) (local.get $hi)))
    (f64.add (f64x2.extract_lane 0 (local.get $lo)) (f64x2.extract_lane 1 (local.get $lo))))`;

/** column_sum(x, out, rows, width): out[c] = Σ_rows x[row, c] (a bias gradient), width a multiple of 4. */
const COLUMN_SUM = `(func (export "column_sum") (param $x i32) (param $out i32) (param $rows i32) (param $width i32)
    (local $row i32) (local $col i32) (local $rowBytes i32) (local $base i32)
    (local.set $rowBytes (i32.shl (local.get $width) (i32.const 2)))
    ${eachVector('(local.get $rowBytes)', `(v128.store ${at('(local.get $out)')} (v128.const i32x4 0 0 0 0))`)}
    ${range(
      '$row',
      '(local.get $rows)',
      1,
      `(local.set $base (i32.add (local.get $x) (i32.mul (local.get $row) (local.get $rowBytes))))
      ${eachVector(
        '(local.get $rowBytes)',
        `(v128.store ${at('(local.get $out)')} (f32x4.add ${load('(local.get $out)')} ${load('(local.get $base)')}))`,
      )}`,
    )})`;

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

// Attention on [B·T, H·d] rows: head h of token t is the d floats at column h·d of row t, so q, k, v and the
// context are read and written where the projections put them (no transposes). Per (batch, head) the head of k
// (or v) is first copied transposed into a scratch [d][Tp] block, Tp = T rounded up to 4 and zero-padded, so a
// row of scores is d multiply-adds of 4-lane vectors. Probabilities are kept as [B, H, T, Tp] with zeros in the
// padding. Byte offsets throughout; i32 locals.
const ATTENTION_LOCALS = `(local $Tp i32) (local $TpB i32) (local $rowStride i32) (local $headBytes i32)
    (local $b i32) (local $h i32) (local $i i32) (local $j i32) (local $jv i32) (local $c i32) (local $cv i32)
    (local $headOff i32) (local $pRow i32) (local $xRow i32) (local $yRow i32)
    (local $acc v128) (local $s v128) (local $valid v128) (local $best v128) (local $sum v128) (local $z v128)
    (local $sj v128) (local $pj v128) (local $hsum v128) (local $ek v128) (local $er v128)
    (local $pa i32) (local $paEnd i32) (local $pb i32) (local $pc i32) (local $pcEnd i32) (local $pk i32) (local $pv i32)
    (local $pq i32) (local $pd i32)`;

const ATTENTION_SETUP = `(local.set $Tp (i32.and (i32.add (local.get $tokens) (i32.const 3)) (i32.const -4)))
    (local.set $TpB (i32.shl (local.get $Tp) (i32.const 2)))
    (local.set $headBytes (i32.shl (local.get $headDim) (i32.const 2)))
    (local.set $rowStride (i32.mul (local.get $heads) (local.get $headBytes)))`;

/** The byte offset of (batch b, token 0, head h) in a rows tensor. */
const HEAD_OFFSET = `(local.set $headOff (i32.add
      (i32.mul (i32.mul (local.get $b) (local.get $tokens)) (local.get $rowStride))
      (i32.mul (local.get $h) (local.get $headBytes))))`;

/** Copies head (b, h) of the rows tensor at $src transposed into $scratch as [d][Tp], zero-padded. */
const transposeHead = (src: string) =>
  range(
    '$c',
    '(local.get $headDim)',
    1,
    range(
      '$j',
      '(local.get $Tp)',
      1,
      `(f32.store
        (i32.add (local.get $scratch) (i32.add (i32.mul (local.get $c) (local.get $TpB)) (i32.shl (local.get $j) (i32.const 2))))
        (if (result f32) (i32.lt_u (local.get $j) (local.get $tokens))
          (then (f32.load (i32.add (i32.add (local.get ${src}) (local.get $headOff))
            (i32.add (i32.mul (local.get $j) (local.get $rowStride)) (i32.shl (local.get $c) (i32.const 2))))))
          (else (f32.const 0))))`,
    ),
  );

/** Lanes of the 4 columns starting at byte $jv that are real tokens (all ones), not padding (zeros). */
const VALID_LANES = `(i32x4.lt_s
      (i32x4.add (i32x4.splat (i32.shr_u (local.get $jv) (i32.const 2))) (v128.const i32x4 0 1 2 3))
      (i32x4.splat (local.get $tokens)))`;

/** Σ_c splat(x[row $xRow, c]) · scratch[c][$jv..+4]: 4 columns of (row of x)·(transposed head in scratch). */
const ROW_TIMES_SCRATCH = scalarsTimesRows(
  '(local.get $xRow)',
  '(i32.add (local.get $xRow) (local.get $headBytes))',
  '(i32.add (local.get $scratch) (local.get $jv))',
  '(local.get $TpB)',
);

/** Σ_j splat(row[j]) · head rows j of src at column byte $cv, for j < T: one 4-column slice of (row)·(head). */
const rowTimesHead = (row: string, src: string) =>
  scalarsTimesRows(
    row,
    `(i32.add ${row} (i32.shl (local.get $tokens) (i32.const 2)))`,
    `(i32.add (i32.add (local.get ${src}) (local.get $headOff)) (local.get $cv))`,
    '(local.get $rowStride)',
  );

/**
 * attention(q, k, v, mask, context, probs, scratch, batch, tokens, heads, headDim, scale): softmax(q·kᵀ·scale +
 * mask)·v per head; mask is 0 or [B, T] floats added to every query's scores; scratch holds d·Tp + Tp floats.
 */
const ATTENTION = `(func (export "attention") (param $q i32) (param $k i32) (param $v i32) (param $mask i32)
    (param $context i32) (param $probs i32) (param $scratch i32) (param $batch i32) (param $tokens i32)
    (param $heads i32) (param $headDim i32) (param $scale f32)
    (local $maskRow i32) ${ATTENTION_LOCALS}
    ${ATTENTION_SETUP}
    (local.set $maskRow (i32.add (local.get $scratch) (i32.mul (local.get $headDim) (local.get $TpB))))
    ${range(
      '$b',
      '(local.get $batch)',
      1,
      `${range(
        '$j',
        '(local.get $Tp)',
        1,
        `(f32.store (i32.add (local.get $maskRow) (i32.shl (local.get $j) (i32.const 2)))
          (if (result f32) (i32.and (i32.ne (local.get $mask) (i32.const 0)) (i32.lt_u (local.get $j) (local.get $tokens)))
            (then (f32.load (i32.add (local.get $mask)
              (i32.shl (i32.add (i32.mul (local.get $b) (local.get $tokens)) (local.get $j)) (i32.const 2)))))
            (else (f32.const 0))))`,
      )}
      ${range(
        '$h',
        '(local.get $heads)',
        1,
        `${HEAD_OFFSET}
        ${transposeHead('$k')}
        ${range(
          '$i',
          '(local.get $tokens)',
          1,
          `(local.set $pRow (i32.add (local.get $probs) (i32.mul
            (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $heads)) (local.get $h)) (local.get $tokens)) (local.get $i))
            (local.get $TpB))))
          (local.set $xRow (i32.add (i32.add (local.get $q) (local.get $headOff)) (i32.mul (local.get $i) (local.get $rowStride))))
          (local.set $best ${splat(-Infinity)})
          ${range(
            '$jv',
            '(local.get $TpB)',
            16,
            `(local.set $s (f32x4.add (f32x4.mul ${ROW_TIMES_SCRATCH} (f32x4.splat (local.get $scale)))
              (v128.load (i32.add (local.get $maskRow) (local.get $jv)))))
            (local.set $s (v128.bitselect (local.get $s) ${splat(-Infinity)} ${VALID_LANES}))
            (v128.store (i32.add (local.get $pRow) (local.get $jv)) (local.get $s))
            (local.set $best (f32x4.max (local.get $best) (local.get $s)))`,
          )}
          (local.set $best (f32x4.splat ${laneMax('(local.get $best)')}))
          (local.set $sum (v128.const i32x4 0 0 0 0))
          ${range(
            '$jv',
            '(local.get $TpB)',
            16,
            `(local.set $z (f32x4.sub (v128.load (i32.add (local.get $pRow) (local.get $jv))) (local.get $best)))
            (local.set $s (v128.and ${exp('$z', '$e')} ${VALID_LANES}))
            (v128.store (i32.add (local.get $pRow) (local.get $jv)) (local.get $s))
            (local.set $sum (f32x4.add (local.get $sum) (local.get $s)))`,
          )}
          (local.set $sum (f32x4.splat (f32.div (f32.const 1) ${laneSum('(local.get $sum)')})))
          ${range(
            '$jv',
            '(local.get $TpB)',
            16,
            `(v128.store (i32.add (local.get $pRow) (local.get $jv))
              (f32x4.mul (v128.load (i32.add (local.get $pRow) (local.get $jv))) (local.get $sum)))`,
          )}
          (local.set $yRow (i32.add (i32.add (local.get $context) (local.get $headOff)) (i32.mul (local.get $i) (local.get $rowStride))))
          ${range(
            '$cv',
            '(local.get $headBytes)',
            16,
            `(v128.store (i32.add (local.get $yRow) (local.get $cv)) ${rowTimesHead('(local.get $pRow)', '$v')})`,
          )}`,
        )}`,
      )}`,
    )})`;

/**
 * attention_grad(dContext, q, k, v, probs, dq, dk, dv, scratch, batch, tokens, heads, headDim, scale):
 * dP = dC·vᵀ, dS = P∘(dP − rowsum(dP∘P))·scale, dQ = dS·k, dK = dSᵀ·q, dV = Pᵀ·dC; scratch holds d·Tp + Tp floats.
 */
const ATTENTION_GRAD = `(func (export "attention_grad") (param $dc i32) (param $q i32) (param $k i32) (param $v i32)
    (param $probs i32) (param $dq i32) (param $dk i32) (param $dv i32) (param $scratch i32) (param $batch i32)
    (param $tokens i32) (param $heads i32) (param $headDim i32) (param $scale f32)
    (local $dsRow i32) (local $rowOff i32) ${ATTENTION_LOCALS}
    ${ATTENTION_SETUP}
    (local.set $dsRow (i32.add (local.get $scratch) (i32.mul (local.get $headDim) (local.get $TpB))))
    ${range(
      '$b',
      '(local.get $batch)',
      1,
      range(
        '$h',
        '(local.get $heads)',
        1,
        `${HEAD_OFFSET}
        ${transposeHead('$v')}
        ${range(
          '$j',
          '(local.get $tokens)',
          1,
          range(
            '$cv',
            '(local.get $headBytes)',
            16,
            `(local.set $rowOff (i32.add (i32.add (local.get $headOff) (i32.mul (local.get $j) (local.get $rowStride))) (local.get $cv)))
            (v128.store (i32.add (local.get $dk) (local.get $rowOff)) (v128.const i32x4 0 0 0 0))
            (v128.store (i32.add (local.get $dv) (local.get $rowOff)) (v128.const i32x4 0 0 0 0))`,
          ),
        )}
        ${range(
          '$i',
          '(local.get $tokens)',
          1,
          `(local.set $pRow (i32.add (local.get $probs) (i32.mul
            (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $heads)) (local.get $h)) (local.get $tokens)) (local.get $i))
            (local.get $TpB))))
          (local.set $rowOff (i32.add (local.get $headOff) (i32.mul (local.get $i) (local.get $rowStride))))
          (local.set $xRow (i32.add (local.get $dc) (local.get $rowOff)))
          (local.set $sum (v128.const i32x4 0 0 0 0))
          ${range(
            '$jv',
            '(local.get $TpB)',
            16,
            `(local.set $s ${ROW_TIMES_SCRATCH})
            (v128.store (i32.add (local.get $dsRow) (local.get $jv)) (local.get $s))
            (local.set $sum (f32x4.add (local.get $sum) (f32x4.mul (local.get $s) (v128.load (i32.add (local.get $pRow) (local.get $jv))))))`,
          )}
          (local.set $sum (f32x4.splat ${laneSum('(local.get $sum)')}))
          ${range(
            '$jv',
            '(local.get $TpB)',
            16,
            `(v128.store (i32.add (local.get $dsRow) (local.get $jv))
              (f32x4.mul (f32x4.mul (v128.load (i32.add (local.get $pRow) (local.get $jv)))
                (f32x4.sub (v128.load (i32.add (local.get $dsRow) (local.get $jv))) (local.get $sum)))
                (f32x4.splat (local.get $scale))))`,
          )}
          ${range(
            '$cv',
            '(local.get $headBytes)',
            16,
            `(v128.store (i32.add (i32.add (local.get $dq) (local.get $rowOff)) (local.get $cv))
              ${rowTimesHead('(local.get $dsRow)', '$k')})`,
          )}
          ${range(
            '$j',
            '(local.get $tokens)',
            1,
            `(local.set $sj (f32x4.splat (f32.load (i32.add (local.get $dsRow) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $pj (f32x4.splat (f32.load (i32.add (local.get $pRow) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $yRow (i32.add (local.get $headOff) (i32.mul (local.get $j) (local.get $rowStride))))
            (local.set $pk (i32.add (local.get $dk) (local.get $yRow)))
            (local.set $pv (i32.add (local.get $dv) (local.get $yRow)))
            (local.set $pq (i32.add (local.get $q) (local.get $rowOff)))
            ${walk(
              '$pc',
              '(local.get $xRow)',
              '(i32.add (local.get $xRow) (local.get $headBytes))',
              16,
              `(v128.store (local.get $pk)
                (f32x4.add (v128.load (local.get $pk)) (f32x4.mul (local.get $sj) (v128.load (local.get $pq)))))
              (v128.store (local.get $pv)
                (f32x4.add (v128.load (local.get $pv)) (f32x4.mul (local.get $pj) (v128.load (local.get $pc)))))
              (local.set $pk (i32.add (local.get $pk) (i32.const 16)))
              (local.set $pv (i32.add (local.get $pv) (i32.const 16)))
              (local.set $pq (i32.add (local.get $pq) (i32.const 16)))`,
            )}`,
          )}`,
        )}`,
      ),
    )})`;

export const KERNELS_WAT = `(module
  (import "env" "memory" (memory 1))

  ;; gelu_erf(x, out, cdf, n): out = x·Φ(x), and Φ(x) kept for the backward pass
  ${elementwise('gelu_erf', ['x'], GELU_LOCALS, `(local.set $phi ${normalCdf('$v_x')})`, {
    out: `(f32x4.mul ${get('$v_x')} ${get('$phi')})`,
    cdf: get('$phi'),
  })}

  ;; gelu_erf_grad(x, cdf, dy, out, n): out = dy·(Φ(x) + x·φ(x))
  ${elementwise('gelu_erf_grad', ['x', 'cdf', 'dy'], GELU_LOCALS, '', {
    out: `(f32x4.mul ${get('$v_dy')} (f32x4.add ${get('$v_cdf')} (f32x4.mul ${get('$v_x')} ${normalDensity('$v_x')})))`,
  })}

  ${COLUMN_SUM}

  ${SUM_SQUARES}

  ;; adamw(p, g, m, v, pOut, mOut, vOut, n, stepSize, beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps, decay,
  ;;       invSqrtCorrection2, gradScale): torch.optim.AdamW on g·gradScale (the clipping factor), as torch orders it:
  ;; m' = β₁m + (1−β₁)g, v' = β₂v + (1−β₂)g², p' = p·decay − stepSize·m'/(√v'·invSqrtCorrection2 + ε) with
  ;; stepSize = lr/(1−β₁ᵗ), decay = 1 − lr·weight_decay (1 for vectors). The caller computes every scalar in float64
  ;; (1 − β₂ from a float32 β₂ would be off by 1.3e-5).
  ${elementwise(
    'adamw',
    ['p', 'g', 'm', 'v'],
    ['$G', '$M', '$V', '$b1', '$b1c', '$b2', '$b2c', '$step', '$epsv', '$decayv', '$c2v', '$gs'],
    `(local.set $G (f32x4.mul ${get('$v_g')} ${get('$gs')}))
      (local.set $M (f32x4.add (f32x4.mul ${get('$b1')} ${get('$v_m')}) (f32x4.mul ${get('$b1c')} ${get('$G')})))
      (local.set $V (f32x4.add (f32x4.mul ${get('$b2')} ${get('$v_v')})
        (f32x4.mul (f32x4.mul ${get('$b2c')} ${get('$G')}) ${get('$G')})))`,
    {
      pOut: `(f32x4.sub (f32x4.mul ${get('$v_p')} ${get('$decayv')})
        (f32x4.div (f32x4.mul ${get('$step')} ${get('$M')})
          (f32x4.add (f32x4.mul (f32x4.sqrt ${get('$V')}) ${get('$c2v')}) ${get('$epsv')})))`,
      mOut: get('$M'),
      vOut: get('$V'),
    },
    {
      // The kernel's scalar parameters in the order the op wrapper passes its attributes.
      scalars: [...ADAMW_ATTRS],
      prologue: `(local.set $b1 (f32x4.splat (local.get $beta1)))
    (local.set $b1c (f32x4.splat (local.get $oneMinusBeta1)))
    (local.set $b2 (f32x4.splat (local.get $beta2)))
    (local.set $b2c (f32x4.splat (local.get $oneMinusBeta2)))
    (local.set $step (f32x4.splat (local.get $stepSize)))
    (local.set $epsv (f32x4.splat (local.get $eps)))
    (local.set $decayv (f32x4.splat (local.get $decay)))
    (local.set $c2v (f32x4.splat (local.get $invSqrtCorrection2)))
    (local.set $gs (f32x4.splat (local.get $gradScale)))`,
    },
  )}

  ${LAYER_NORM}

  ${LAYER_NORM_GRAD}

  ${ATTENTION}

  ${ATTENTION_GRAD}

  ${MATMUL}

  ${TRANSPOSE}
)`;
