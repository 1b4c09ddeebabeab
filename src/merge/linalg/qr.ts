// Thin Householder QR: A (m×n) = Q (m×k) · R (k×n), k = min(m, n), Q with orthonormal columns.
// Works on column arrays internally so every reflection walks contiguous memory.
import { type DenseMatrix, zeros } from './dense.ts';

export interface QrResult {
  q: DenseMatrix;
  r: DenseMatrix;
}

/** x[from:] -= 2·(v·x[from:])·v for a unit reflector v of length x.length − from. */
function reflect(v: Float64Array, x: Float64Array, from: number): void {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * x[from + i];
  if (s === 0) return;
  s *= 2;
  for (let i = 0; i < v.length; i++) x[from + i] -= s * v[i];
}

export function householderQr(a: DenseMatrix): QrResult {
  const { rows: m, cols: n } = a;
  const k = Math.min(m, n);
  const cols: Float64Array[] = [];
  for (let c = 0; c < n; c++) {
    const col = new Float64Array(m);
    for (let i = 0; i < m; i++) col[i] = a.data[i * n + c];
    cols.push(col);
  }
  const reflectors: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const v = cols[j].slice(j);
    let norm = 0;
    for (let i = 0; i < v.length; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    if (norm === 0) {
      reflectors.push(new Float64Array(v.length)); // the identity reflection
      continue;
    }
    // Reflect onto -sign(x₀)·‖x‖·e₀ so v₀ never cancels.
    v[0] -= v[0] >= 0 ? -norm : norm;
    let vNorm = 0;
    for (let i = 0; i < v.length; i++) vNorm += v[i] * v[i];
    vNorm = Math.sqrt(vNorm);
    for (let i = 0; i < v.length; i++) v[i] /= vNorm;
    for (let c = j; c < n; c++) reflect(v, cols[c], j);
    reflectors.push(v);
  }
  const r = zeros(k, n);
  for (let c = 0; c < n; c++) {
    for (let i = 0; i <= Math.min(c, k - 1); i++) r.data[i * n + c] = cols[c][i];
  }
  // Q = H₀H₁…H_{k−1}·I[:, :k], applied from the last reflector back.
  const qCols: Float64Array[] = [];
  for (let c = 0; c < k; c++) {
    const col = new Float64Array(m);
    col[c] = 1;
    for (let j = Math.min(c, k - 1); j >= 0; j--) reflect(reflectors[j], col, j);
    qCols.push(col);
  }
  const q = zeros(m, k);
  for (let c = 0; c < k; c++) {
    const col = qCols[c];
    for (let i = 0; i < m; i++) q.data[i * k + c] = col[i];
  }
  return { q, r };
}
