// How a tensor splits into the vectors a per-row method works on: vector v holds the elements
// offset(v) + i·stride for i < length. Written once for rows (last axis), columns (first axis) and "flatten".

export interface VectorLayout {
  count: number;
  length: number;
  stride: number;
  offset(vector: number): number;
}

/** The whole tensor as one vector. */
export function flatLayout(numel: number): VectorLayout {
  return { count: 1, length: numel, stride: 1, offset: () => 0 };
}

/** Vectors along the last axis (torch dim=-1): the rows of a matrix. A 0-D or 1-D tensor is one vector. */
export function lastAxisLayout(shape: readonly number[], numel: number): VectorLayout {
  if (shape.length === 0) return flatLayout(numel);
  const length = shape[shape.length - 1];
  return { count: length === 0 ? 0 : numel / length, length, stride: 1, offset: (v) => v * length };
}

/** Vectors along the first axis (torch transpose(0, -1) then dim=-1): the columns of a matrix. */
export function firstAxisLayout(shape: readonly number[], numel: number): VectorLayout {
  if (shape.length === 0) return flatLayout(numel);
  const length = shape[0];
  const stride = length === 0 ? 0 : numel / length;
  return { count: stride, length, stride, offset: (v) => v };
}
