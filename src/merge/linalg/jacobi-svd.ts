// Accurate SVD of a small dense matrix by one-sided (Hestenes) Jacobi rotations in float64:
// A (m×n) = U·diag(S)·Vᵀ with k = min(m, n) singular triplets, sorted by decreasing S.
import { type DenseMatrix, matmul, transpose, zeros } from './dense.ts';
import { householderQr } from './qr.ts';

export interface SvdResult {
  /** m×k, orthonormal columns (a column is zero where its singular value is exactly 0). */
  u: DenseMatrix;
  s: Float64Array;
  /** n×k, orthonormal columns: A = U·diag(S)·Vᵀ. */
  v: DenseMatrix;
}

const MAX_SWEEPS = 60;

export function jacobiSvd(a: DenseMatrix): SvdResult {
  if (a.rows < a.cols) {
    const t = jacobiSvd(transpose(a));
    return { u: t.v, s: t.s, v: t.u };
  }
  const m = a.rows;
  const n = a.cols;
  // Work on columns: rotations mix pairs of columns of A·V until they are mutually orthogonal.
  const cols: Float64Array[] = [];
  const vCols: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const col = new Float64Array(m);
    for (let i = 0; i < m; i++) col[i] = a.data[i * n + j];
    cols.push(col);
    const vc = new Float64Array(n);
    vc[j] = 1;
    vCols.push(vc);
  }
  const eps = 1e-15;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const cp = cols[p];
        const cq = cols[q];
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < m; i++) {
          alpha += cp[i] * cp[i];
          beta += cq[i] * cq[i];
          gamma += cp[i] * cq[i];
        }
        if (gamma === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = cp[i];
          const y = cq[i];
          cp[i] = c * x - s * y;
          cq[i] = s * x + c * y;
        }
        const vp = vCols[p];
        const vq = vCols[q];
        for (let i = 0; i < n; i++) {
          const x = vp[i];
          const y = vq[i];
          vp[i] = c * x - s * y;
          vq[i] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = cols.map((col) => Math.sqrt(col.reduce((acc, x) => acc + x * x, 0)));
  const order = norms.map((_, i) => i).sort((i, j) => norms[j] - norms[i]);
  const u = zeros(m, n);
  const v = zeros(n, n);
  const s = new Float64Array(n);
  order.forEach((src, dst) => {
    const sigma = norms[src];
    s[dst] = sigma;
    for (let i = 0; i < m; i++) u.data[i * n + dst] = sigma > 0 ? cols[src][i] / sigma : 0;
    for (let i = 0; i < n; i++) v.data[i * n + dst] = vCols[src][i];
  });
  return { u, s, v };
}

/** SVD of any small dense matrix: a tall (or wide) one is first reduced to its square QR factor. */
export function denseSvd(a: DenseMatrix): SvdResult {
  if (a.rows < a.cols) {
    const t = denseSvd(transpose(a));
    return { u: t.v, s: t.s, v: t.u };
  }
  if (a.rows <= a.cols * 2) return jacobiSvd(a);
  const { q, r } = householderQr(a);
  const core = jacobiSvd(r);
  return { u: matmul(q, core.u), s: core.s, v: core.v };
}
