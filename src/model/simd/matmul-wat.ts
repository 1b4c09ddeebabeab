// The WebAssembly text of lorafuse's matrix product. tfjs-backend-wasm's matMul (XNNPACK) repacks its right operand
// on every call when that operand is new, which in training it always is, and runs transpose flags 10× slower than
// a plain product; at the sizes lorafuse trains (rows of 64–1024 floats) that overhead, not arithmetic, set the
// pace. This kernel reads its left operand through two strides, so Aᵀ costs nothing; its only copies are small
// ones that keep what a block re-reads in L1 (a band of B, and a slice of a wide transposed A).
//
// The register block is 2 rows × 16 columns (8 accumulators): one splat of an A element feeds four multiply-adds
// against a 16-float row of B. On this project's machines it ran at 55–60 GFLOP/s against XNNPACK's 25–40 at the
// bench ViT's shapes (.bench-data scratch timing, see the README). Narrower blocks (4 and 1 columns, 1 row)
// finish the edges, so any m, k, n works.

import { range, walk } from './wat.ts';

/** Whether a block covers 4 floats per vector slot or a single float (the last n mod 4 columns). */
type Lanes = 'vector' | 'scalar';

const ZERO = '(v128.const i32x4 0 0 0 0)';

/**
 * k is walked in slices of this many steps, so that a block's strip of B and its A elements (one cache line per
 * step when A is read transposed) stay in the L1 cache across the blocks that reuse them.
 */
const K_SLICE = 128;

/** The scratch matmul needs: one 16-column band of B over one slice of k. */
export const MATMUL_PACK_BYTES = K_SLICE * 64;

/** The scratch for packing A (see sliceOfA): m rows of one slice of k. */
export function matmulPackABytes(m: number): number {
  return m * K_SLICE * 4;
}

/**
 * One register block at rows [i, i+rows), columns [j, j + slots·4) (or column j alone for scalar lanes): C = A·B
 * (+ bias) over this slice of k, reading A from $sliceA (rows $sliceARow, steps of k $sliceACol bytes apart, see
 * sliceOfA) and B from $bandB (steps of k $bandBRow bytes apart, see columns).
 */
function block(rows: 1 | 2, slots: number, lanes: Lanes): string {
  const vector = lanes === 'vector';
  const type = vector ? 'v128' : 'f32';
  const load = vector ? 'v128.load' : 'f32.load';
  const store = vector ? 'v128.store' : 'f32.store';
  const width = vector ? 16 : 4;
  const acc = (r: number, s: number) => `$${vector ? 'acc' : 'sacc'}${r}_${s}`;
  const rowList = Array.from({ length: rows }, (_, r) => r);
  const slotList = Array.from({ length: slots }, (_, s) => s);
  const each = (f: (r: number, s: number) => string) =>
    rowList.flatMap((r) => slotList.map((s) => f(r, s))).join('\n        ');
  const biasAt = (s: number) =>
    `(${load} offset=${s * width} (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))))`;
  const cAt = (r: number) =>
    `(i32.add (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2)))
        (i32.mul (i32.add (local.get $i) (i32.const ${r})) (local.get $rowBytes)))`;
  // The first slice of k starts from the bias (or 0), later ones from the partial sums already in C.
  const start = (r: number, s: number) => `(if (result ${type}) (local.get $kBegin)
        (then (${load} offset=${s * width} ${cAt(r)}))
        (else (if (result ${type}) (local.get $hasBias) (then ${biasAt(s)}) (else ${vector ? ZERO : '(f32.const 0)'}))))`;
  const init = each((r, s) => `(local.set ${acc(r, s)} ${start(r, s)})`);
  const b = (s: number) => (vector ? `$b${s}` : '$sb');
  const loadB = slotList.map((s) => `(local.set ${b(s)} (${load} offset=${s * width} (local.get $pb)))`);
  const splatA = (r: number) =>
    vector ? `(v128.load32_splat (local.get $pa${r}))` : `(f32.load (local.get $pa${r}))`;
  const multiplyAdd = rowList.map(
    (r) => `(local.set ${vector ? '$s' : '$ss'} ${splatA(r)})
        ${slotList
          .map(
            (s) =>
              `(local.set ${acc(r, s)} (${vector ? 'f32x4' : 'f32'}.add (local.get ${acc(r, s)})
          (${vector ? 'f32x4' : 'f32'}.mul (local.get ${vector ? '$s' : '$ss'}) (local.get ${b(s)}))))`,
          )
          .join('\n        ')}`,
  );
  const stores = each((r, s) => `(${store} offset=${s * width} ${cAt(r)} (local.get ${acc(r, s)}))`);
  const advanceA = rowList.map(
    (r) => `(local.set $pa${r} (i32.add (local.get $pa${r}) (local.get $sliceACol)))`,
  );
  return `${init}
      (local.set $pa0 (i32.add (local.get $sliceA) (i32.mul (local.get $i) (local.get $sliceARow))))
      (local.set $pa1 (i32.add (local.get $pa0) (local.get $sliceARow)))
      (local.set $pb (local.get $bandB))
      (local.set $paEnd (i32.add (local.get $pa0) (i32.mul (local.get $kCount) (local.get $sliceACol))))
      (if (i32.lt_u (local.get $pa0) (local.get $paEnd)) (then (loop $kLoop
        ${loadB.join('\n        ')}
        ${multiplyAdd.join('\n        ')}
        ${advanceA.join('\n        ')}
        (local.set $pb (i32.add (local.get $pb) (local.get $bandBRow)))
        (br_if $kLoop (i32.lt_u (local.get $pa0) (local.get $paEnd))))))
      ${stores}`;
}

/**
 * Every row of one column band: pairs of rows, then the last row when m is odd. Rows run inside columns so that a
 * band's strip of B (one slice of k by 16 columns: 8 KiB) stays in L1 while every row reads it; A's rows stream.
 * (Rows outside columns re-read the whole slice of B per row pair: 512×768·768×3072 ran at 23.6 GFLOP/s that way,
 * 28.2 this way before the bands were copied, 51–55 after.)
 */
function rowsOf(slots: number, lanes: Lanes): string {
  const id = `${slots}${lanes}`;
  return `(local.set $i (i32.const 0))
      (block $pairsDone${id} (loop $pairs${id}
        (br_if $pairsDone${id} (i32.gt_u (i32.add (local.get $i) (i32.const 2)) (local.get $m)))
        ${block(2, slots, lanes)}
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $pairs${id})))
      (if (i32.lt_u (local.get $i) (local.get $m)) (then
        ${block(1, slots, lanes)}))`;
}

/** The column sweep over n: 16-column bands, then 4-column ones, then single columns. */
function columns(): string {
  const sweep = (step: number, body: string) => `(block $done${step} (loop $cols${step}
      (br_if $done${step} (i32.gt_u (i32.add (local.get $j) (i32.const ${step})) (local.get $n)))
      ${body}
      (local.set $j (i32.add (local.get $j) (i32.const ${step})))
      (br $cols${step})))`;
  // A band's B in place: this slice's first row of k, the band's first column, rows n floats apart.
  const inPlace = `(local.set $bandB (i32.add (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))
        (i32.mul (local.get $kBegin) (local.get $rowBytes))))
      (local.set $bandBRow (local.get $rowBytes))`;
  // A 16-column band's B copied into $packB, rows 64 bytes apart: in place its rows lie n floats apart, and
  // when 4n is a multiple of 4 KiB every one of them falls in the same L1 set (n = 3072 ran at 24 GFLOP/s).
  const packed = `${inPlace}
      ${range(
        '$t',
        '(local.get $kCount)',
        1,
        `(local.set $pb (i32.add (local.get $bandB) (i32.mul (local.get $t) (local.get $rowBytes))))
        (local.set $pa0 (i32.add (local.get $packB) (i32.shl (local.get $t) (i32.const 6))))
        (v128.store (local.get $pa0) (v128.load (local.get $pb)))
        (v128.store offset=16 (local.get $pa0) (v128.load offset=16 (local.get $pb)))
        (v128.store offset=32 (local.get $pa0) (v128.load offset=32 (local.get $pb)))
        (v128.store offset=48 (local.get $pa0) (v128.load offset=48 (local.get $pb)))`,
      )}
      (local.set $bandB (local.get $packB))
      (local.set $bandBRow (i32.const 64))`;
  return `(local.set $j (i32.const 0))
    ${sweep(16, `${packed}\n      ${rowsOf(4, 'vector')}`)}
    ${sweep(4, `${inPlace}\n      ${rowsOf(1, 'vector')}`)}
    ${sweep(1, `${inPlace}\n      ${rowsOf(1, 'scalar')}`)}`;
}

/**
 * Where the blocks read this slice of A: in place, or, when packA is given, copied row-major into it (rows of
 * K_SLICE floats). A stored transposed with 4m a multiple of 4 KiB puts every element a block walks in the
 * same few L1 sets (m = 3072 ran at 27 GFLOP/s); the copy costs m·K_SLICE loads and stores per slice.
 */
function sliceOfA(): string {
  return `(if (local.get $packA)
      (then
        ${range(
          '$t',
          '(local.get $kCount)',
          1,
          `(local.set $pa1 (i32.add (local.get $packA) (i32.shl (local.get $t) (i32.const 2))))
          ${walk(
            '$pa0',
            '(i32.add (local.get $a) (i32.mul (i32.add (local.get $kBegin) (local.get $t)) (local.get $aCol)))',
            '(i32.add (local.get $pa0) (i32.mul (local.get $m) (local.get $aRow)))',
            '(local.get $aRow)',
            `(f32.store (local.get $pa1) (f32.load (local.get $pa0)))
            (local.set $pa1 (i32.add (local.get $pa1) (i32.const ${K_SLICE * 4})))`,
          )}`,
        )}
        (local.set $sliceA (local.get $packA))
        (local.set $sliceARow (i32.const ${K_SLICE * 4}))
        (local.set $sliceACol (i32.const 4)))
      (else
        (local.set $sliceA (i32.add (local.get $a) (i32.mul (local.get $kBegin) (local.get $aCol))))
        (local.set $sliceARow (local.get $aRow))
        (local.set $sliceACol (local.get $aCol))))`;
}

/**
 * matmul(a, b, bias, c, m, k, n, aRow, aCol, hasBias, packB, packA): c[m, n] = A·B (+ bias[n] on every row when
 * hasBias), with A's element (r, t) at a + r·aRow + t·aCol bytes (aRow = 4k, aCol = 4 for a row-major A; aRow = 4,
 * aCol = 4m for A stored transposed) and B row-major [k, n]; packB is scratch of MATMUL_PACK_BYTES, packA 0 or
 * scratch of matmulPackABytes(m) (see sliceOfA). Each output element sums over t in order, in float32.
 */
export const MATMUL = `(func (export "matmul") (param $a i32) (param $b i32) (param $bias i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $aRow i32) (param $aCol i32) (param $hasBias i32)
    (param $packB i32) (param $packA i32)
    (local $i i32) (local $j i32) (local $pa0 i32) (local $pa1 i32) (local $paEnd i32) (local $pb i32)
    (local $rowBytes i32) (local $kBegin i32) (local $kCount i32) (local $t i32) (local $bandB i32) (local $bandBRow i32) (local $sliceA i32) (local $sliceARow i32) (local $sliceACol i32) (local $pa0End i32) (local $s v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $acc0_0 v128) (local $acc0_1 v128) (local $acc0_2 v128) (local $acc0_3 v128)
    (local $acc1_0 v128) (local $acc1_1 v128) (local $acc1_2 v128) (local $acc1_3 v128)
    (local $ss f32) (local $sb f32) (local $sacc0_0 f32) (local $sacc1_0 f32)
    (local.set $rowBytes (i32.shl (local.get $n) (i32.const 2)))
    (loop $slices
      (local.set $kCount (select (i32.sub (local.get $k) (local.get $kBegin)) (i32.const ${K_SLICE})
        (i32.lt_u (i32.sub (local.get $k) (local.get $kBegin)) (i32.const ${K_SLICE}))))
      ${sliceOfA()}
      ${columns()}
      (local.set $kBegin (i32.add (local.get $kBegin) (local.get $kCount)))
      (br_if $slices (i32.lt_u (local.get $kBegin) (local.get $k)))))`;

/** transpose(x, out, rows, cols): out[cols, rows] = x[rows, cols]ᵀ (packs a transposed right operand for matmul). */
export const TRANSPOSE = `(func (export "transpose") (param $x i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $c i32) (local $src i32) (local $dst i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $rows) (i32.const 2)))
    (local.set $src (local.get $x))
    ${range(
      '$r',
      '(local.get $rows)',
      1,
      `(local.set $dst (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))))
      ${range(
        '$c',
        '(local.get $cols)',
        1,
        `(f32.store (local.get $dst) (f32.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $dst (i32.add (local.get $dst) (local.get $rowBytes)))`,
      )}`,
    )})`;
