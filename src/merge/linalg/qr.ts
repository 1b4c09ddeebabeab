// Thin Householder QR: A (m×n) = Q (m×k) · R (k×n), k = min(m, n), Q with orthonormal columns.
import { type DenseMatrix, zeros } from './dense.ts';

export interface QrResult {
  q: DenseMatrix;
  r: DenseMatrix;
}

export function householderQr(a: DenseMatrix): QrResult {
  const { rows: m, cols: n } = a;
  const k = Math.min(m, n);
  const work = Float64Array.from(a.data);
  const reflectors: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const v = new Float64Array(m - j);
    let norm = 0;
    for (let i = j; i < m; i++) {
      v[i - j] = work[i * n + j];
      norm += v[i - j] * v[i - j];
    }
    norm = Math.sqrt(norm);
    if (norm === 0) {
      reflectors.push(v); // all zeros: the identity reflection
      continue;
    }
    // Reflect onto -sign(x₀)·‖x‖·e₀ so v₀ never cancels.
    const alpha = v[0] >= 0 ? -norm : norm;
    v[0] -= alpha;
    let vNorm = 0;
    for (let i = 0; i < v.length; i++) vNorm += v[i] * v[i];
    vNorm = Math.sqrt(vNorm);
    for (let i = 0; i < v.length; i++) v[i] /= vNorm;
    for (let c = j; c < n; c++) {
      let s = 0;
      for (let i = j; i < m; i++) s += v[i - j] * work[i * n + c];
      s *= 2;
      for (let i = j; i < m; i++) work[i * n + c] -= s * v[i - j];
    }
    reflectors.push(v);
  }
  const r = zeros(k, n);
  for (let i = 0; i < k; i++) {
    for (let c = i; c < n; c++) r.data[i * n + c] = work[i * n + c];
  }
  // Q = H₀H₁…H_{k−1}·I[:, :k], applied from the last reflector back.
  const q = zeros(m, k);
  for (let i = 0; i < k; i++) q.data[i * k + i] = 1;
  for (let j = k - 1; j >= 0; j--) {
    const v = reflectors[j];
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let i = j; i < m; i++) s += v[i - j] * q.data[i * k + c];
      if (s === 0) continue;
      s *= 2;
      for (let i = j; i < m; i++) q.data[i * k + c] -= s * v[i - j];
    }
  }
  return { q, r };
}
