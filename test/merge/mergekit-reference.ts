// A plain float64 restatement of mergekit's GTATask and linear (sorting instead of radix select),
// used to check the held-back golden cases from the README's description on the golden inputs.

export interface ReferenceModel {
  data: Float32Array;
  weight: number;
  density?: number;
  gamma?: number;
}

function argsortByMagnitude(d: Float64Array, descending: boolean): number[] {
  const idx = Array.from({ length: d.length }, (_, i) => i);
  idx.sort(
    (a, b) => (descending ? Math.abs(d[b]) - Math.abs(d[a]) : Math.abs(d[a]) - Math.abs(d[b])) || a - b,
  );
  return idx;
}

function sparsify(
  d: Float64Array,
  model: ReferenceModel,
  method: 'magnitude' | 'outliers',
  compat: boolean,
): void {
  const density = model.density ?? 1;
  if (density >= 1) return;
  const n = d.length;
  const keep = new Uint8Array(n);
  if (method === 'magnitude') {
    const k = Math.trunc(density * n);
    for (const i of argsortByMagnitude(d, true).slice(0, k)) keep[i] = 1;
  } else {
    const target = Math.trunc(density * n);
    let nTop = Math.trunc((model.gamma ?? 0.01) * n);
    let nBot = n - target - nTop;
    if (nBot < 0) {
      nTop += nBot;
      nBot = 0;
    }
    // Python's indices[n_bot:-n_top] is empty when n_top = 0.
    const end = nTop === 0 && compat ? 0 : n - nTop;
    const order = argsortByMagnitude(d, false);
    for (let r = nBot; r < end; r++) keep[order[r]] = 1;
  }
  for (let i = 0; i < n; i++) if (!keep[i]) d[i] = 0;
}

export function referenceGta(
  base: Float32Array,
  models: ReferenceModel[],
  options: {
    sparsify?: 'magnitude' | 'outliers';
    consensus?: boolean;
    normalize: boolean;
    lambda?: number;
    compat?: boolean;
  },
): Float64Array {
  const n = base.length;
  const deltas = models.map((m) => {
    const d = new Float64Array(n);
    for (let i = 0; i < n; i++) d[i] = m.data[i] - base[i];
    if (options.sparsify) sparsify(d, m, options.sparsify, options.compat ?? false);
    return d;
  });
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let mixed = 0;
    let divisor = 0;
    if (options.consensus) {
      let vote = 0;
      models.forEach((m, k) => {
        vote += m.weight * deltas[k][i];
      });
      const majority = vote >= 0 ? 1 : -1;
      models.forEach((m, k) => {
        const wd = m.weight * deltas[k][i];
        if (Math.sign(wd) === majority) {
          mixed += wd;
          divisor += m.weight;
        }
      });
      if (divisor === 0) divisor = 1;
    } else {
      models.forEach((m, k) => {
        mixed += m.weight * deltas[k][i];
        divisor += m.weight;
      });
      if (Math.abs(divisor) < 1e-8) divisor = 1;
    }
    if (options.normalize) mixed /= divisor;
    out[i] = base[i] + mixed * (options.lambda ?? 1);
  }
  return out;
}

export function referenceLinear(models: ReferenceModel[], normalize: boolean): Float64Array {
  const n = models[0].data.length;
  const out = new Float64Array(n);
  const total = models.reduce((s, m) => s + m.weight, 0);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (const m of models) sum += m.weight * m.data[i];
    out[i] = normalize ? sum / total : sum;
  }
  return out;
}
