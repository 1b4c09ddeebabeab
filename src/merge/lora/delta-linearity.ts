// Finds the coefficients of a method that declares itself linear in its inputs (linear, task_arithmetic
// over a zero base): f(X) = Σ cᵢ·Xᵢ is solved for c on a small seeded random probe (least squares) and
// checked on a second, so a parameter combination that breaks linearity is still caught. A linear merge
// of LoRA deltas keeps rank ≤ Σrᵢ, so it can be re-factored exactly from the stacked thin factors.
import { gaussian, seededStream } from '../linalg/seeded-random.ts';
import { denseSvd } from '../linalg/jacobi-svd.ts';
import type { ParameterValue, TensorInput, TensorMergeMethod } from '../method.ts';

const PROBE_SHAPE = [8, 12];
const PROBE_NUMEL = 96;
/** float32 arithmetic inside the method leaves residuals near 1e-7; a nonlinear method misses by far more. */
const LINEAR_TOLERANCE = 1e-5;

export interface ProbeOptions {
  withBase: boolean;
  params: Readonly<Record<string, ParameterValue>>;
  modelParams: ReadonlyArray<Readonly<Record<string, ParameterValue>>>;
}

/** The coefficients cᵢ with f(X₀…X_{k−1}) = Σ cᵢ·Xᵢ (a zero base added when withBase), or null if f is not linear. */
export function linearCoefficients(method: TensorMergeMethod, options: ProbeOptions): number[] | null {
  if (method.linearInInputs !== true || method.random) return null;
  const k = options.modelParams.length;
  if (k === 0 || k > PROBE_NUMEL / 2) return null;
  const random = seededStream(0x5eed + k);
  const probe = () =>
    options.modelParams.map(() => Float32Array.from({ length: PROBE_NUMEL }, () => gaussian(random)));
  try {
    const first = probe();
    const coefs = solveCoefficients(first, evaluate(method, first, options));
    // All-zero output is no evidence of linearity: a sparsifier can drop a whole small probe (breadcrumbs
    // with int(gamma·numel) = 0) and still act on the real, larger tensor.
    if (!coefs || coefs.every((c) => Math.abs(c) < 1e-12)) return null;
    for (const xs of [first, probe()]) {
      const out = evaluate(method, xs, options);
      let residual = 0;
      let norm = 0;
      for (let e = 0; e < PROBE_NUMEL; e++) {
        let predicted = 0;
        for (let i = 0; i < k; i++) predicted += coefs[i] * xs[i][e];
        residual += (out[e] - predicted) ** 2;
        norm += out[e] ** 2;
      }
      if (
        !Number.isFinite(residual) ||
        Math.sqrt(residual) > LINEAR_TOLERANCE * Math.max(Math.sqrt(norm), 1e-30)
      ) {
        return null;
      }
    }
    return coefs;
  } catch {
    return null; // a method that rejects the probe is treated as nonlinear and runs on the real deltas
  }
}

function evaluate(method: TensorMergeMethod, xs: Float32Array[], options: ProbeOptions): Float32Array {
  const inputs: TensorInput[] = xs.map((data, i) => ({
    model: `adapter ${i}`,
    isBase: false,
    data,
    params: options.modelParams[i],
  }));
  if (options.withBase)
    inputs.push({ model: 'base', isBase: true, data: new Float32Array(PROBE_NUMEL), params: {} });
  return method.mergeTensor({
    tensorName: 'probe.weight',
    shape: PROBE_SHAPE,
    inputs,
    params: options.params,
    random: () => {
      throw new Error('probe of a random method');
    },
  });
}

/** Least squares min‖Σ cᵢ·xᵢ − y‖ through the SVD of the probe matrix (numel×k). */
function solveCoefficients(xs: Float32Array[], y: Float32Array): number[] | null {
  const k = xs.length;
  const data = new Float64Array(PROBE_NUMEL * k);
  for (let e = 0; e < PROBE_NUMEL; e++) for (let i = 0; i < k; i++) data[e * k + i] = xs[i][e];
  const { u, s, v } = denseSvd({ rows: PROBE_NUMEL, cols: k, data });
  if (s[k - 1] <= 1e-9 * s[0]) return null;
  const coefs = new Array<number>(k).fill(0);
  for (let j = 0; j < k; j++) {
    let uty = 0;
    for (let e = 0; e < PROBE_NUMEL; e++) uty += u.data[e * k + j] * y[e];
    for (let i = 0; i < k; i++) coefs[i] += (v.data[i * k + j] * uty) / s[j];
  }
  return coefs;
}
