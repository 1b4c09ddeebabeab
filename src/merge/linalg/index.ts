// Dense linear algebra for the LoRA re-factoring: float64 matrices, Householder QR, Jacobi SVD,
// the factored SVD of B·A and a seeded randomized SVD.
export * from './dense.ts';
export * from './jacobi-svd.ts';
export * from './low-rank-svd.ts';
export * from './qr.ts';
export * from './randomized-svd.ts';
export * from './seeded-random.ts';
