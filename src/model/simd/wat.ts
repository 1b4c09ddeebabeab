// Small WebAssembly-text builders for the SIMD kernels: each returns a folded s-expression over f32x4 values, so a
// kernel reads as its formula and every helper is inlined where it is used (no call per 4 elements).

/** A float32 literal for WAT (exact: the shortest decimal of the float32 value). */
export function f32(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  return String(Math.fround(value));
}

/** The same float32 in every lane. */
export function splat(value: number): string {
  const c = f32(value);
  return `(v128.const f32x4 ${c} ${c} ${c} ${c})`;
}

export const get = (local: string): string => `(local.get ${local})`;

/** Horner's rule in `t` (a local), lowest degree first, one rounding per multiply and add as tf.mul/tf.add do. */
export function horner(t: string, coefficients: readonly number[]): string {
  let acc = splat(coefficients[coefficients.length - 1]);
  for (let i = coefficients.length - 2; i >= 0; i--) {
    acc = `(f32x4.add (f32x4.mul ${acc} ${get(t)}) ${splat(coefficients[i])})`;
  }
  return acc;
}

const LOG2E = Math.LOG2E;
// ln 2 split in two (Cody and Waite) so that k·ln2 is subtracted without losing bits.
const LN2_HI = 0.693359375;
const LN2_LO = -2.1219444e-4;
/** 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer held in the low mantissa bits. */
const MAGIC_ROUND = 12582912;
// Cephes expf's polynomial for e^r − 1 − r on |r| ≤ ln2/2 (relative error about 1 ulp).
const EXP_POLY = [
  5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.98756915e-4,
];

/**
 * e^z per lane for z a local: exactly 0 below ln(FLT_MIN) ≈ −87.34 (no subnormals: a masked attention key must get a
 * probability of exactly 0, as tfjs's exp gives it, or Adam would turn its tiny gradient into a full step), NaN for NaN; it saturates at
 * e^88 above (every use here has z ≤ 0). Uses the locals `${scratch}k` and `${scratch}r` (declare both as v128).
 */
export function exp(z: string, scratch: string): string {
  const k = `${scratch}k`;
  const r = `${scratch}r`;
  const clamped = `(f32x4.min (f32x4.max ${get(z)} ${splat(-87)}) ${splat(88)})`;
  // k = round(z·log2 e) by adding 1.5·2²³: the sum's low mantissa bits then hold k + 127 (the magic number's own
  // low bits are zero), so shifting its bits left by 23 gives the float 2^k directly (no float→int conversion,
  // which is several instructions on x64).
  return `(v128.bitselect ${splat(0)} (block (result v128)
    (local.set ${k} (f32x4.add (f32x4.mul ${clamped} ${splat(LOG2E)}) ${splat(MAGIC_ROUND + 127)}))
    (local.set ${r} (f32x4.sub ${get(k)} ${splat(MAGIC_ROUND + 127)}))
    (local.set ${r} (f32x4.sub (f32x4.sub ${clamped} (f32x4.mul ${get(r)} ${splat(LN2_HI)}))
      (f32x4.mul ${get(r)} ${splat(LN2_LO)})))
    (f32x4.mul
      (f32x4.add (f32x4.add (f32x4.mul ${horner(r, EXP_POLY)} (f32x4.mul ${get(r)} ${get(r)})) ${get(r)}) ${splat(1)})
      (i32x4.shl ${get(k)} (i32.const 23))))
    (f32x4.lt ${get(z)} ${splat(-87.33654)}))`;
}

/** Horizontal sum of the four lanes of a v128 expression, as an f32. */
export function laneSum(vector: string): string {
  return `(block (result f32) (local.set $hsum ${vector})
    (f32.add (f32.add (f32x4.extract_lane 0 (local.get $hsum)) (f32x4.extract_lane 1 (local.get $hsum)))
      (f32.add (f32x4.extract_lane 2 (local.get $hsum)) (f32x4.extract_lane 3 (local.get $hsum)))))`;
}

/** Horizontal maximum of the four lanes of a v128 expression, as an f32. */
export function laneMax(vector: string): string {
  return `(block (result f32) (local.set $hsum ${vector})
    (f32.max (f32.max (f32x4.extract_lane 0 (local.get $hsum)) (f32x4.extract_lane 1 (local.get $hsum)))
      (f32.max (f32x4.extract_lane 2 (local.get $hsum)) (f32x4.extract_lane 3 (local.get $hsum)))))`;
}

/**
 * An element-wise kernel over `n` floats: the v128 locals $v_<input> are loaded from the pointer parameters named
 * in `inputs`; `statements` may set more `locals`; then each output parameter gets its v128 expression. f32
 * `scalars` follow `$n` as parameters; `prologue` runs once before the loop (to splat them into locals). Whole
 * vectors first, then the 0–3 tail elements one at a time through lane 0 of a splat, so no byte outside the tensors
 * is read or written.
 */
export function elementwise(
  name: string,
  inputs: string[],
  locals: string[],
  statements: string,
  outputs: Record<string, string>,
  options: { scalars?: string[]; prologue?: string } = {},
): string {
  const pointers = [...inputs, ...Object.keys(outputs)].map((p) => `(param $${p} i32)`).join(' ');
  const scalars = (options.scalars ?? []).map((p) => `(param $${p} f32)`).join(' ');
  const declared = [...inputs.map((i) => `$v_${i}`), ...locals].map((l) => `(local ${l} v128)`).join(' ');
  const address = (pointer: string) => `(i32.add (local.get $${pointer}) (local.get $byte))`;
  const loadVectors = inputs.map((i) => `(local.set $v_${i} (v128.load ${address(i)}))`).join('\n      ');
  const loadOnes = inputs
    .map((i) => `(local.set $v_${i} (f32x4.splat (f32.load ${address(i)})))`)
    .join('\n      ');
  const outs = Object.entries(outputs);
  const storeVectors = outs.map(([o, value]) => `(v128.store ${address(o)} ${value})`).join('\n      ');
  const storeOnes = outs
    .map(([o, value]) => `(f32.store ${address(o)} (f32x4.extract_lane 0 ${value}))`)
    .join('\n      ');
  return `(func (export "${name}") ${pointers} (param $n i32) ${scalars}
    (local $byte i32) (local $end i32) (local $vectorEnd i32) ${declared}
    ${options.prologue ?? ''}
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vectorEnd (i32.and (local.get $end) (i32.const -16)))
    (block $vectorsDone (loop $vectors
      (br_if $vectorsDone (i32.ge_u (local.get $byte) (local.get $vectorEnd)))
      ${loadVectors}
      ${statements}
      ${storeVectors}
      (local.set $byte (i32.add (local.get $byte) (i32.const 16)))
      (br $vectors)))
    (block $tailDone (loop $tail
      (br_if $tailDone (i32.ge_u (local.get $byte) (local.get $end)))
      ${loadOnes}
      ${statements}
      ${storeOnes}
      (local.set $byte (i32.add (local.get $byte) (i32.const 4)))
      (br $tail))))`;
}

let labels = 0;

/**
 * for (i = 0; i < end; i += step) body — `i` an i32 local, `end` an i32 expression (evaluated every turn), `step`
 * an i32 constant or expression.
 */
export function range(i: string, end: string, step: number | string, body: string): string {
  const id = `$l${labels++}`;
  const by = typeof step === 'number' ? `(i32.const ${step})` : step;
  return `(local.set ${i} (i32.const 0))
    (block ${id}_done (loop ${id}_loop
      (br_if ${id}_done (i32.ge_u (local.get ${i}) ${end}))
      ${body}
      (local.set ${i} (i32.add (local.get ${i}) ${by}))
      (br ${id}_loop)))`;
}

/** for (p = start; p < end; p += step) body — `p` an i32 local (a byte address), `end` evaluated once into `${p}End`. */
export function walk(p: string, start: string, end: string, step: number | string, body: string): string {
  const id = `$l${labels++}`;
  const by = typeof step === 'number' ? `(i32.const ${step})` : step;
  return `(local.set ${p} ${start})
    (local.set ${p}End ${end})
    (block ${id}_done (loop ${id}_loop
      (br_if ${id}_done (i32.ge_u (local.get ${p}) (local.get ${p}End)))
      ${body}
      (local.set ${p} (i32.add (local.get ${p}) ${by}))
      (br ${id}_loop)))`;
}

/**
 * Σ splat(f32 at a) · (v128 at b) with a walking [aStart, aEnd) by 4 bytes and b by `bStep` bytes: one row of a
 * small matrix product (a row of scalars against rows of 4-lane vectors). Uses the i32 locals $pa, $paEnd, $pb
 * and the v128 local $acc; leaves the sum on the stack.
 */
export function scalarsTimesRows(aStart: string, aEnd: string, bStart: string, bStep: string): string {
  return `(block (result v128)
    (local.set $acc (v128.const i32x4 0 0 0 0))
    (local.set $pb ${bStart})
    ${walk(
      '$pa',
      aStart,
      aEnd,
      4,
      `(local.set $acc (f32x4.add (local.get $acc)
        (f32x4.mul (f32x4.splat (f32.load (local.get $pa))) (v128.load (local.get $pb)))))
      (local.set $pb (i32.add (local.get $pb) ${bStep}))`,
    )}
    (local.get $acc))`;
}
