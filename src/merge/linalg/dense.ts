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

/** a·b, i-k-j loop order so the inner loop walks rows of b and of the output. */
export function matmul(a: DenseMatrix, b: DenseMatrix): DenseMatrix {
  if (a.cols !== b.rows) throw new RangeError(`matmul: ${a.rows}x${a.cols} by ${b.rows}x${b.cols}`);
  const out = zeros(a.rows, b.cols);
  const n = b.cols;
  for (let i = 0; i < a.rows; i++) {
    const outRow = i * n;
    for (let k = 0; k < a.cols; k++) {
      const aik = a.data[i * a.cols + k];
      if (aik === 0) continue;
      const bRow = k * n;
      for (let j = 0; j < n; j++) out.data[outRow + j] += aik * b.data[bRow + j];
    }
  }
  return out;
}

/** aᵀ·b without forming aᵀ. */
export function matmulTransposeA(a: DenseMatrix, b: DenseMatrix): DenseMatrix {
  if (a.rows !== b.rows)
    throw new RangeError(`matmulTransposeA: ${a.rows}x${a.cols}ᵀ by ${b.rows}x${b.cols}`);
  const out = zeros(a.cols, b.cols);
  const n = b.cols;
  for (let k = 0; k < a.rows; k++) {
    const bRow = k * n;
    for (let i = 0; i < a.cols; i++) {
      const aki = a.data[k * a.cols + i];
      if (aki === 0) continue;
      const outRow = i * n;
      for (let j = 0; j < n; j++) out.data[outRow + j] += aki * b.data[bRow + j];
    }
  }
  return out;
}

/** Columns [start, end) of m. */
export function sliceColumns(m: DenseMatrix, start: number, end: number): DenseMatrix {
  const width = end - start;
  const out = zeros(m.rows, width);
  for (let i = 0; i < m.rows; i++) {
    for (let j = 0; j < width; j++) out.data[i * width + j] = m.data[i * m.cols + start + j];
  }
  return out;
}

/** Rows [start, end) of m. */
export function sliceRows(m: DenseMatrix, start: number, end: number): DenseMatrix {
  return { rows: end - start, cols: m.cols, data: m.data.slice(start * m.cols, end * m.cols) };
}

export function frobeniusNorm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum);
}

/** Σ xᵢyᵢ accumulated in float64. */
export function dot64(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i] * y[i];
  return sum;
}

export function toFloat32(m: DenseMatrix): Float32Array {
  return Float32Array.from(m.data);
}
