// Linear probe: multinomial logistic regression on frozen features, the standard check that a backbone's
// representation is useful (pure typed-array math, deterministic: full-batch gradient descent from zeros).

export interface ProbeData {
  /** Row-major [N, D]. */
  features: Float32Array;
  labels: ArrayLike<number>;
}

export interface LinearProbe {
  classes: number;
  dims: number;
  /** Standardisation fitted on the training features. */
  mean: Float64Array;
  scale: Float64Array;
  /** [classes, dims], applied to standardised features. */
  weights: Float64Array;
  bias: Float64Array;
}

export interface ProbeOptions {
  classes: number;
  iterations?: number;
  learningRate?: number;
  /** L2 penalty on the weights (not the bias). */
  l2?: number;
}

function standardiser(data: ProbeData, dims: number): { mean: Float64Array; scale: Float64Array } {
  const n = data.labels.length;
  const mean = new Float64Array(dims);
  const scale = new Float64Array(dims);
  for (let i = 0; i < n; i++) for (let d = 0; d < dims; d++) mean[d] += data.features[i * dims + d] / n;
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < dims; d++) scale[d] += (data.features[i * dims + d] - mean[d]) ** 2 / n;
  }
  // A constant feature carries nothing; scale 1 keeps it at 0 instead of dividing by 0.
  for (let d = 0; d < dims; d++) scale[d] = scale[d] > 1e-12 ? 1 / Math.sqrt(scale[d]) : 1;
  return { mean, scale };
}

/** Softmax probabilities of one standardised row into `out`. */
function probabilities(probe: LinearProbe, row: Float64Array, out: Float64Array): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < probe.classes; c++) {
    let z = probe.bias[c];
    for (let d = 0; d < probe.dims; d++) z += probe.weights[c * probe.dims + d] * row[d];
    out[c] = z;
    if (z > max) max = z;
  }
  let sum = 0;
  for (let c = 0; c < probe.classes; c++) {
    out[c] = Math.exp(out[c] - max);
    sum += out[c];
  }
  for (let c = 0; c < probe.classes; c++) out[c] /= sum;
}

function standardisedRow(probe: LinearProbe, features: Float32Array, i: number, row: Float64Array): void {
  for (let d = 0; d < probe.dims; d++) {
    row[d] = (features[i * probe.dims + d] - probe.mean[d]) * probe.scale[d];
  }
}

/** Fits the probe by full-batch gradient descent with Nesterov momentum on the mean cross-entropy + L2. */
export function fitLinearProbe(train: ProbeData, options: ProbeOptions): LinearProbe {
  const n = train.labels.length;
  const dims = train.features.length / n;
  const { classes } = options;
  const iterations = options.iterations ?? 300;
  const learningRate = options.learningRate ?? 0.5;
  const l2 = options.l2 ?? 1e-4;
  const probe: LinearProbe = {
    classes,
    dims,
    ...standardiser(train, dims),
    weights: new Float64Array(classes * dims),
    bias: new Float64Array(classes),
  };
  const velocityW = new Float64Array(classes * dims);
  const velocityB = new Float64Array(classes);
  const gradW = new Float64Array(classes * dims);
  const gradB = new Float64Array(classes);
  const row = new Float64Array(dims);
  const p = new Float64Array(classes);
  const momentum = 0.9;
  for (let step = 0; step < iterations; step++) {
    // Nesterov: the gradient is taken at the look-ahead point w + μ·v.
    for (let k = 0; k < probe.weights.length; k++) probe.weights[k] += momentum * velocityW[k];
    for (let c = 0; c < classes; c++) probe.bias[c] += momentum * velocityB[c];
    gradW.fill(0);
    gradB.fill(0);
    for (let i = 0; i < n; i++) {
      standardisedRow(probe, train.features, i, row);
      probabilities(probe, row, p);
      p[train.labels[i]] -= 1;
      for (let c = 0; c < classes; c++) {
        gradB[c] += p[c] / n;
        for (let d = 0; d < dims; d++) gradW[c * dims + d] += (p[c] * row[d]) / n;
      }
    }
    for (let k = 0; k < gradW.length; k++) gradW[k] += l2 * probe.weights[k];
    for (let k = 0; k < probe.weights.length; k++) {
      probe.weights[k] -= momentum * velocityW[k];
      velocityW[k] = momentum * velocityW[k] - learningRate * gradW[k];
      probe.weights[k] += velocityW[k];
    }
    for (let c = 0; c < classes; c++) {
      probe.bias[c] -= momentum * velocityB[c];
      velocityB[c] = momentum * velocityB[c] - learningRate * gradB[c];
      probe.bias[c] += velocityB[c];
    }
  }
  return probe;
}

/** The probe's predicted class per row. */
export function probePredictions(probe: LinearProbe, features: Float32Array): Int32Array {
  const n = features.length / probe.dims;
  const predictions = new Int32Array(n);
  const row = new Float64Array(probe.dims);
  const p = new Float64Array(probe.classes);
  for (let i = 0; i < n; i++) {
    standardisedRow(probe, features, i, row);
    probabilities(probe, row, p);
    let best = 0;
    for (let c = 1; c < probe.classes; c++) if (p[c] > p[best]) best = c;
    predictions[i] = best;
  }
  return predictions;
}

/** Fraction of rows the probe classifies correctly. */
export function probeAccuracy(probe: LinearProbe, data: ProbeData): number {
  const predictions = probePredictions(probe, data.features);
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === data.labels[i]) correct += 1;
  return predictions.length === 0 ? 0 : correct / predictions.length;
}

/**
 * The probe as a classifier head on the raw features: the standardisation folded into the weights, so that
 * `weight · x + bias` gives the probe's logits for an unstandardised feature row x. weight is [classes, dims].
 */
export function probeAsHead(probe: LinearProbe): { weight: Float32Array; bias: Float32Array } {
  const weight = new Float32Array(probe.classes * probe.dims);
  const bias = new Float32Array(probe.classes);
  for (let c = 0; c < probe.classes; c++) {
    let shift = probe.bias[c];
    for (let d = 0; d < probe.dims; d++) {
      const w = probe.weights[c * probe.dims + d] * probe.scale[d];
      weight[c * probe.dims + d] = w;
      shift -= w * probe.mean[d];
    }
    bias[c] = shift;
  }
  return { weight, bias };
}
