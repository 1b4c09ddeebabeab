/** Linear warm-up to the base rate over `warmupSteps`, then cosine decay to zero at `totalSteps`. */
export function learningRateAt(step: number, base: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return (base * (step + 1)) / warmupSteps;
  const span = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / span);
  return base * 0.5 * (1 + Math.cos(Math.PI * progress));
}
