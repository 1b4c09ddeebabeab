// Label-free statistics of task vectors δᵢ = θᵢ − θ₀, accumulated one tensor at a time so that no input
// is ever held whole: the Gram matrix Σ δᵢ·δⱼ (float64) gives norms and cosines, and TIES's sign
// conflicts are counted per layer (after TIES's own top-k trim when a density below 1 is asked for).

/** Which layer a tensor belongs to: `<container>.N` (model.layers.3, encoder.layer.3, h.3, blocks.3), else `other`. */
export function layerOf(tensorName: string): string {
  const match = /(?:^|\.)(?:layers|layer|h|blocks)\.(\d+)\./.exec(tensorName);
  if (!match) return 'other';
  return tensorName.slice(0, match.index + match[0].length - 1).replace(/^\./, '');
}

export interface SignConflictRow {
  layer: string;
  /** Conflicting coordinates ÷ coordinates where at least two inputs are non-zero (where a conflict can happen). */
  rate: number;
  conflicts: number;
  contested: number;
}

export interface TaskVectorStats {
  gram: number[][];
  norms: number[];
  cosine: number[][];
  meanOffDiagonalCosine: number;
  signConflict: SignConflictRow[];
  tensors: number;
  parameters: number;
}

/** TIES's trim: keep the int(density·numel) entries of largest magnitude (ties at the threshold kept in index order). */
export function trimToTopK(delta: Float64Array, density: number): Float64Array {
  if (density >= 1) return delta;
  const k = Math.floor(density * delta.length);
  const out = new Float64Array(delta.length);
  if (k <= 0) return out;
  const magnitudes = Float64Array.from(delta, Math.abs).sort();
  const threshold = magnitudes[delta.length - k];
  let kept = 0;
  for (let i = 0; i < delta.length && kept < k; i++) {
    if (Math.abs(delta[i]) > threshold) {
      out[i] = delta[i];
      kept++;
    }
  }
  for (let i = 0; i < delta.length && kept < k; i++) {
    if (Math.abs(delta[i]) === threshold && out[i] === 0 && threshold > 0) {
      out[i] = delta[i];
      kept++;
    }
  }
  return out;
}

export class TaskVectorAccumulator {
  private readonly gram: Float64Array;
  private readonly layers = new Map<string, { conflicts: number; contested: number; order: number }>();
  private tensors = 0;
  private parameters = 0;

  constructor(
    readonly inputs: number,
    private readonly options: { density?: number } = {},
  ) {
    if (inputs < 1) throw new RangeError('task-vector statistics need at least one input');
    this.gram = new Float64Array(inputs * inputs);
  }

  /** Adds one tensor's task vectors (one per input, equal lengths). */
  add(tensorName: string, deltas: Float64Array[]): void {
    const n = this.inputs;
    if (deltas.length !== n) throw new RangeError(`${tensorName}: ${deltas.length} deltas for ${n} inputs`);
    const numel = deltas[0].length;
    for (const d of deltas) {
      if (d.length !== numel) throw new RangeError(`${tensorName}: task vectors differ in length`);
    }
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        const a = deltas[i];
        const b = deltas[j];
        let sum = 0;
        for (let k = 0; k < numel; k++) sum += a[k] * b[k];
        this.gram[i * n + j] += sum;
        if (i !== j) this.gram[j * n + i] += sum;
      }
    }
    const trimmed = deltas.map((d) => trimToTopK(d, this.options.density ?? 1));
    let conflicts = 0;
    let contested = 0;
    for (let k = 0; k < numel; k++) {
      let positive = 0;
      let negative = 0;
      for (let i = 0; i < n; i++) {
        const v = trimmed[i][k];
        if (v > 0) positive++;
        else if (v < 0) negative++;
      }
      if (positive + negative >= 2) {
        contested++;
        if (positive > 0 && negative > 0) conflicts++;
      }
    }
    const layer = layerOf(tensorName);
    const row = this.layers.get(layer) ?? { conflicts: 0, contested: 0, order: this.layers.size };
    row.conflicts += conflicts;
    row.contested += contested;
    this.layers.set(layer, row);
    this.tensors++;
    this.parameters += numel;
  }

  result(): TaskVectorStats {
    const n = this.inputs;
    const gram = Array.from({ length: n }, (_, i) => Array.from(this.gram.subarray(i * n, (i + 1) * n)));
    const norms = gram.map((row, i) => Math.sqrt(Math.max(0, row[i])));
    const cosine = cosineFromGram(gram);
    return {
      gram,
      norms,
      cosine,
      meanOffDiagonalCosine: meanOffDiagonal(cosine),
      signConflict: [...this.layers.entries()]
        .sort(([x, a], [y, b]) => compareLayers(x, y) || a.order - b.order)
        .map(([layer, { conflicts, contested }]) => ({
          layer,
          rate: contested === 0 ? 0 : conflicts / contested,
          conflicts,
          contested,
        })),
      tensors: this.tensors,
      parameters: this.parameters,
    };
  }
}

/** Cosine similarity from a Gram matrix: 1 on the diagonal, 0 where either vector is zero. */
export function cosineFromGram(gram: number[][]): number[][] {
  const norms = gram.map((row, i) => Math.sqrt(Math.max(0, row[i])));
  return gram.map((row, i) =>
    row.map((g, j) => {
      if (i === j) return norms[i] > 0 ? 1 : 0; // exactly 1, not 1 − ε from rounding
      return norms[i] > 0 && norms[j] > 0 ? clamp(g / (norms[i] * norms[j])) : 0;
    }),
  );
}

export function meanOffDiagonal(matrix: number[][]): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < matrix.length; i++) {
    for (let j = 0; j < matrix.length; j++) {
      if (i === j) continue;
      sum += matrix[i][j];
      count++;
    }
  }
  return count === 0 ? 0 : sum / count;
}

function clamp(x: number): number {
  return Math.max(-1, Math.min(1, x));
}

/** `other` first, then layers by container name and numeric index (layers.2 before layers.10). */
function compareLayers(x: string, y: string): number {
  if (x === y) return 0;
  if (x === 'other') return -1;
  if (y === 'other') return 1;
  const px = /^(.*)\.(\d+)$/.exec(x);
  const py = /^(.*)\.(\d+)$/.exec(y);
  if (px && py && px[1] === py[1]) return Number(px[2]) - Number(py[2]);
  return x < y ? -1 : 1;
}
