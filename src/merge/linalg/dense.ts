// Dense row-major matrices in float64 and the few kernels the SVD code needs. Float64 throughout:
// these matrices are small (thin factors, cores, sketches), so precision is cheaper than speed here.

/** A row-major float64 matrix. */
export interface DenseMatrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function zeros(rows: number, cols: number): DenseMatrix {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

/** Wraps (copies to float64) a row-major array. */
export function fromArray(rows: number, cols: number, values: ArrayLike<number>): DenseMatrix {
  if (values.length !== rows * cols) {
    throw new RangeError(`expected ${rows}x${cols} = ${rows * cols} values, got ${values.length}`);
  }
  return { rows, cols, data: Float64Array.from(values) };
}

export function identity(n: number): DenseMatrix {
  const m = zeros(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

export function transpose(m: DenseMatrix): DenseMatrix {
  const out = zeros(m.cols, m.rows);
  for (let i = 0; i < m.rows; i++) {
    for (let j = 0; j < m.cols; j++) out.data[j * m.rows + i] = m.data[i * m.cols + j];
  }
  return out;
}

/** a·b, i-k-j loop order so the inner loop walks rows of b and of the output, four rows of b at a time. */
export function matmul(a: DenseMatrix, b: DenseMatrix): DenseMatrix {
  if (a.cols !== b.rows) throw new RangeError(`matmul: ${a.rows}x${a.cols} by ${b.rows}x${b.cols}`);
  const out = zeros(a.rows, b.cols);
  matmulInto(out.data, a.data, a.rows, a.cols, b.data, b.cols);
  return out;
}

/** out (m×n) += a (m×k) · b (k×n), all row-major; any numeric arrays (float32 factors welcome). */
export function matmulInto(
  out: Float64Array,
  a: ArrayLike<number>,
  m: number,
  k: number,
  b: ArrayLike<number>,
  n: number,
): void {
  for (let i = 0; i < m; i++) {
    const outRow = i * n;
    const aRow = i * k;
    let t = 0;
    for (; t + 3 < k; t += 4) {
      const a0 = a[aRow + t];
      const a1 = a[aRow + t + 1];
      const a2 = a[aRow + t + 2];
      const a3 = a[aRow + t + 3];
      const r0 = t * n;
      const r1 = r0 + n;
      const r2 = r1 + n;
      const r3 = r2 + n;
      for (let j = 0; j < n; j++)
        out[outRow + j] += a0 * b[r0 + j] + a1 * b[r1 + j] + a2 * b[r2 + j] + a3 * b[r3 + j];
    }
    for (; t < k; t++) {
      const ait = a[aRow + t];
      if (ait === 0) continue;
      const r0 = t * n;
      for (let j = 0; j < n; j++) out[outRow + j] += ait * b[r0 + j];
    }
  }
}

/**
 * aᵀ·b without forming aᵀ. The inner loop walks rows of b (long when b is the big matrix), four rows
 * of b at a time so each output row is read and written a quarter as often.
 */
export function matmulTransposeA(a: DenseMatrix, b: DenseMatrix): DenseMatrix {
  if (a.rows !== b.rows)
    throw new RangeError(`matmulTransposeA: ${a.rows}x${a.cols}ᵀ by ${b.rows}x${b.cols}`);
  const out = zeros(a.cols, b.cols);
  const n = b.cols;
  const ac = a.cols;
  const ad = a.data;
  const bd = b.data;
  const od = out.data;
  let k = 0;
  for (; k + 3 < a.rows; k += 4) {
    const r0 = k * n;
    const r1 = r0 + n;
    const r2 = r1 + n;
    const r3 = r2 + n;
    for (let i = 0; i < ac; i++) {
      const a0 = ad[k * ac + i];
      const a1 = ad[(k + 1) * ac + i];
      const a2 = ad[(k + 2) * ac + i];
      const a3 = ad[(k + 3) * ac + i];
      const outRow = i * n;
      for (let j = 0; j < n; j++) {
        od[outRow + j] += a0 * bd[r0 + j] + a1 * bd[r1 + j] + a2 * bd[r2 + j] + a3 * bd[r3 + j];
      }
    }
  }
  for (; k < a.rows; k++) {
    const bRow = k * n;
    for (let i = 0; i < ac; i++) {
      const aki = ad[k * ac + i];
      const outRow = i * n;
      for (let j = 0; j < n; j++) od[outRow + j] += aki * bd[bRow + j];
    }
  }
  return out;
}

/** a·bᵀ without forming bᵀ: every entry is a dot product of two contiguous rows (four partial sums). */
export function matmulTransposeB(a: DenseMatrix, b: DenseMatrix): DenseMatrix {
  if (a.cols !== b.cols)
    throw new RangeError(`matmulTransposeB: ${a.rows}x${a.cols} by ${b.rows}x${b.cols}ᵀ`);
  const out = zeros(a.rows, b.rows);
  const k = a.cols;
  const k4 = k - (k % 4);
  const ad = a.data;
  const bd = b.data;
  const od = out.data;
  for (let i = 0; i < a.rows; i++) {
    const aRow = i * k;
    for (let j = 0; j < b.rows; j++) {
      const bRow = j * k;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let t = 0;
      for (; t < k4; t += 4) {
        s0 += ad[aRow + t] * bd[bRow + t];
        s1 += ad[aRow + t + 1] * bd[bRow + t + 1];
        s2 += ad[aRow + t + 2] * bd[bRow + t + 2];
        s3 += ad[aRow + t + 3] * bd[bRow + t + 3];
      }
      for (; t < k; t++) s0 += ad[aRow + t] * bd[bRow + t];
      od[i * b.rows + j] = s0 + s1 + s2 + s3;
    }
  }
  return out;
}

export function frobeniusNorm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum);
}
