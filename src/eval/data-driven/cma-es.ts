// CMA-ES (Hansen's (µ/µ_w, λ) covariance matrix adaptation evolution strategy, "The CMA Evolution Strategy:
// A Tutorial", 2016) for small, bounded, expensive objectives such as LoraHub's: a budget counts objective
// evaluations, candidates are clipped into the box, the best point ever evaluated is returned. Seeded.
import { seededUniform } from '../../model/random.ts';

export interface CmaEsOptions {
  /** The start point (the search's mean at generation 0); it is evaluated first. */
  start: readonly number[];
  /** Initial step size σ. */
  sigma: number;
  /** Objective evaluations allowed in all (the start point included). */
  budget: number;
  lower: number;
  upper: number;
  seed: number;
  /** Population size λ; default 4 + ⌊3 ln n⌋. */
  populationSize?: number;
  signal?: AbortSignal;
  /** After every evaluation. */
  onEvaluation?: (evaluation: { index: number; point: number[]; value: number; best: number }) => void;
}

export interface CmaEsResult {
  best: number[];
  bestValue: number;
  evaluations: number;
  /** Every evaluated point and its value, in order. */
  history: Array<{ point: number[]; value: number }>;
}

/** Standard normal draws from a seeded uniform stream (Box–Muller). */
function normalStream(seed: number): () => number {
  const uniform = seededUniform(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    const u = Math.max(uniform(), 1e-300);
    const v = uniform();
    const radius = Math.sqrt(-2 * Math.log(u));
    spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  };
}

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: C = B·diag(d)·Bᵀ. */
export function symmetricEigen(matrix: readonly number[][]): { values: number[]; vectors: number[][] } {
  const n = matrix.length;
  const a = matrix.map((row) => [...row]);
  const v = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j): number => (i === j ? 1 : 0)),
  );
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] * a[p][q];
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: a.map((row, i) => row[i]), vectors: v };
}

/** Minimises `objective` over the box [lower, upper]ⁿ within `budget` evaluations. */
export async function minimizeCmaEs(
  objective: (point: number[]) => Promise<number> | number,
  options: CmaEsOptions,
): Promise<CmaEsResult> {
  const n = options.start.length;
  const clip = (x: number) => Math.min(options.upper, Math.max(options.lower, x));
  const normal = normalStream(options.seed);
  const history: CmaEsResult['history'] = [];
  let best = options.start.map(clip);
  let bestValue = Number.POSITIVE_INFINITY;
  const evaluate = async (point: number[]): Promise<number> => {
    if (options.signal?.aborted) throw new Error('search stopped');
    const value = await objective(point);
    history.push({ point: [...point], value });
    if (value < bestValue) [best, bestValue] = [[...point], value];
    options.onEvaluation?.({ index: history.length - 1, point: [...point], value, best: bestValue });
    return value;
  };
  await evaluate(best);

  // Strategy parameters (Hansen's defaults).
  const lambda = options.populationSize ?? 4 + Math.floor(3 * Math.log(n));
  const mu = Math.floor(lambda / 2);
  const rawWeights = Array.from({ length: mu }, (_, i) => Math.log(mu + 0.5) - Math.log(i + 1));
  const weightSum = rawWeights.reduce((s, w) => s + w, 0);
  const weights = rawWeights.map((w) => w / weightSum);
  const muEff = 1 / weights.reduce((s, w) => s + w * w, 0);
  const cc = (4 + muEff / n) / (n + 4 + (2 * muEff) / n);
  const cs = (muEff + 2) / (n + muEff + 5);
  const c1 = 2 / ((n + 1.3) ** 2 + muEff);
  const cmu = Math.min(1 - c1, (2 * (muEff - 2 + 1 / muEff)) / ((n + 2) ** 2 + muEff));
  const damps = 1 + 2 * Math.max(0, Math.sqrt((muEff - 1) / (n + 1)) - 1) + cs;
  const chiN = Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));

  let mean = [...best];
  let sigma = options.sigma;
  let pc = new Array<number>(n).fill(0);
  let ps = new Array<number>(n).fill(0);
  let C = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j): number => (i === j ? 1 : 0)));
  let generation = 0;

  while (history.length < options.budget) {
    const { values, vectors: B } = symmetricEigen(C);
    const D = values.map((value) => Math.sqrt(Math.max(value, 1e-20)));
    const count = Math.min(lambda, options.budget - history.length);
    const offspring: Array<{ y: number[]; x: number[]; value: number }> = [];
    for (let k = 0; k < count; k++) {
      const z = Array.from({ length: n }, () => normal());
      // y = B·D·z ~ N(0, C)
      const y = Array.from({ length: n }, (_, i) => {
        let sum = 0;
        for (let j = 0; j < n; j++) sum += B[i][j] * D[j] * z[j];
        return sum;
      });
      const x = y.map((yi, i) => clip(mean[i] + sigma * yi));
      // The update uses the step actually taken, so clipping does not bias the path.
      const taken = x.map((xi, i) => (xi - mean[i]) / sigma);
      offspring.push({ y: taken, x, value: await evaluate(x) });
    }
    if (count < mu) break; // a budget's last partial generation cannot update the distribution soundly
    offspring.sort((a, b) => a.value - b.value);
    const selected = offspring.slice(0, mu);
    const yw = Array.from({ length: n }, (_, i) => selected.reduce((s, o, k) => s + weights[k] * o.y[i], 0));
    mean = mean.map((m, i) => clip(m + sigma * yw[i]));
    // C^{-1/2}·yw = B·D⁻¹·Bᵀ·yw
    const bty = Array.from({ length: n }, (_, j) => B.reduce((s, row, i) => s + row[j] * yw[i], 0));
    const invSqrt = Array.from({ length: n }, (_, i) => {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += (B[i][j] * bty[j]) / D[j];
      return sum;
    });
    ps = ps.map((p, i) => (1 - cs) * p + Math.sqrt(cs * (2 - cs) * muEff) * invSqrt[i]);
    generation += 1;
    const psNorm = Math.sqrt(ps.reduce((s, p) => s + p * p, 0));
    const hsig = psNorm / Math.sqrt(1 - (1 - cs) ** (2 * generation)) / chiN < 1.4 + 2 / (n + 1) ? 1 : 0;
    pc = pc.map((p, i) => (1 - cc) * p + hsig * Math.sqrt(cc * (2 - cc) * muEff) * yw[i]);
    const deltaH = (1 - hsig) * cc * (2 - cc);
    C = C.map((row, i) =>
      row.map((cij, j) => {
        let rankMu = 0;
        for (let k = 0; k < mu; k++) rankMu += weights[k] * selected[k].y[i] * selected[k].y[j];
        return (1 - c1 - cmu) * cij + c1 * (pc[i] * pc[j] + deltaH * cij) + cmu * rankMu;
      }),
    );
    sigma *= Math.exp((cs / damps) * (psNorm / chiN - 1));
    sigma = Math.min(sigma, options.upper - options.lower);
  }
  return { best, bestValue, evaluations: history.length, history };
}
