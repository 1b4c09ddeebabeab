// The WebAssembly text of lorafuse's matrix product. tfjs-backend-wasm's matMul (XNNPACK) repacks its right operand
// on every call when that operand is new, which in training it always is, and runs transpose flags 10× slower than
// a plain product; at the sizes lorafuse trains (rows of 64–1024 floats) that overhead, not arithmetic, set the
// pace. This kernel reads its left operand through two strides, so Aᵀ costs nothing, and needs no packing.
//
// The register block is 2 rows × 16 columns (8 accumulators): one splat of an A element feeds four multiply-adds
// against a 16-float row of B. On this project's machines it ran at 55–60 GFLOP/s against XNNPACK's 25–40 at the
// bench ViT's shapes (.bench-data scratch timing, see the README). Narrower blocks (4 and 1 columns, 1 row)
// finish the edges, so any m, k, n works.

/** Whether a block covers 4 floats per vector slot or a single float (the last n mod 4 columns). */
type Lanes = 'vector' | 'scalar';

const ZERO = '(v128.const i32x4 0 0 0 0)';

/**
 * k is walked in slices of this many steps, so that a block's strip of B and its A elements (one cache line per
 * step when A is read transposed) stay in the L1 cache across the blocks that reuse them.
 */
const K_SLICE = 128;

/**
 * One register block at rows [i, i+rows), columns [j, j + slots·4) (or column j alone for scalar lanes): C = A·B
 * (+ bias), over the whole of k. A's element (r, t) is at a + r·aRow + t·aCol; B is row-major with n columns.
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
  const advanceA = rowList.map((r) => `(local.set $pa${r} (i32.add (local.get $pa${r}) (local.get $aCol)))`);
  return `${init}
      (local.set $pa0 (i32.add (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $aRow)))
        (i32.mul (local.get $kBegin) (local.get $aCol))))
      (local.set $pa1 (i32.add (local.get $pa0) (local.get $aRow)))
      (local.set $pb (i32.add (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2)))
        (i32.mul (local.get $kBegin) (local.get $rowBytes))))
      (local.set $paEnd (i32.add (local.get $pa0) (i32.mul (local.get $kCount) (local.get $aCol))))
      (if (i32.lt_u (local.get $pa0) (local.get $paEnd)) (then (loop $kLoop
        ${loadB.join('\n        ')}
        ${multiplyAdd.join('\n        ')}
        ${advanceA.join('\n        ')}
        (local.set $pb (i32.add (local.get $pb) (local.get $rowBytes)))
        (br_if $kLoop (i32.lt_u (local.get $pa0) (local.get $paEnd))))))
      ${stores}`;
}

/** The column sweep of one band of `rows` rows: 16-column blocks, then 4-column ones, then single columns. */
function columns(rows: 1 | 2): string {
  const sweep = (step: number, body: string) => `(block $done${rows}_${step} (loop $cols${rows}_${step}
      (br_if $done${rows}_${step} (i32.gt_u (i32.add (local.get $j) (i32.const ${step})) (local.get $n)))
      ${body}
      (local.set $j (i32.add (local.get $j) (i32.const ${step})))
      (br $cols${rows}_${step})))`;
  return `(local.set $j (i32.const 0))
    ${sweep(16, block(rows, 4, 'vector'))}
    ${sweep(4, block(rows, 1, 'vector'))}
    ${sweep(1, block(rows, 1, 'scalar'))}`;
}

/**
 * matmul(a, b, bias, c, m, k, n, aRow, aCol, hasBias): c[m, n] = A·B (+ bias[n] on every row when hasBias), with
 * A's element (r, t) at a + r·aRow + t·aCol bytes (aRow = 4k, aCol = 4 for a row-major A; aRow = 4, aCol = 4m for
 * A stored transposed) and B row-major [k, n]. Each output element sums over t in order, in float32.
 */
export const MATMUL = `(func (export "matmul") (param $a i32) (param $b i32) (param $bias i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $aRow i32) (param $aCol i32) (param $hasBias i32)
    (local $i i32) (local $j i32) (local $pa0 i32) (local $pa1 i32) (local $paEnd i32) (local $pb i32)
    (local $rowBytes i32) (local $kBegin i32) (local $kCount i32) (local $s v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $acc0_0 v128) (local $acc0_1 v128) (local $acc0_2 v128) (local $acc0_3 v128)
    (local $acc1_0 v128) (local $acc1_1 v128) (local $acc1_2 v128) (local $acc1_3 v128)
    (local $ss f32) (local $sb f32) (local $sacc0_0 f32) (local $sacc1_0 f32)
    (local.set $rowBytes (i32.shl (local.get $n) (i32.const 2)))
    (loop $slices
      (local.set $kCount (select (i32.sub (local.get $k) (local.get $kBegin)) (i32.const ${K_SLICE})
        (i32.lt_u (i32.sub (local.get $k) (local.get $kBegin)) (i32.const ${K_SLICE}))))
      (local.set $i (i32.const 0))
      (block $pairsDone (loop $pairs
        (br_if $pairsDone (i32.gt_u (i32.add (local.get $i) (i32.const 2)) (local.get $m)))
        ${columns(2)}
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $pairs)))
      (if (i32.lt_u (local.get $i) (local.get $m)) (then
        ${columns(1)}))
      (local.set $kBegin (i32.add (local.get $kBegin) (local.get $kCount)))
      (br_if $slices (i32.lt_u (local.get $kBegin) (local.get $k)))))`;

/** transpose(x, out, rows, cols): out[cols, rows] = x[rows, cols]ᵀ (packs a transposed right operand for matmul). */
export const TRANSPOSE = `(func (export "transpose") (param $x i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $c i32) (local $src i32) (local $dst i32) (local $colBytes i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $rows) (i32.const 2)))
    (local.set $src (local.get $x))
    (block $rowsDone (loop $rowLoop
      (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $dst (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))))
      (local.set $c (i32.const 0))
      (block $colsDone (loop $colLoop
        (br_if $colsDone (i32.ge_u (local.get $c) (local.get $cols)))
        (f32.store (local.get $dst) (f32.load (local.get $src)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $dst (i32.add (local.get $dst) (local.get $rowBytes)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $colLoop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rowLoop))))`;
