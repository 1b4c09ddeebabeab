// AdamW with decoupled weight decay and global-norm clipping as torch does it, on the SIMD kernel, the host or the
// device.
import * as tf from '@tensorflow/tfjs';
import { simdKernelsActive } from '../simd/simd-kernels.ts';
import { simdAdamW, simdSumSquares } from '../simd/simd-ops.ts';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWOptions = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };

/**
 * torch.optim.AdamW: decoupled weight decay (p ← p − lr·wd·p) then Adam with bias correction. Decay skips
 * biases and norm gains (1-D tensors), as the Hugging Face Trainer does.
 *
 * Three placements of the moments and the update. `simd` (wasm with lorafuse's SIMD kernels): the moments are
 * tensors and each tensor's step is one kernel pass (norms read straight from memory), 2.8 → 1.0–1.2 ms a step for a
 * full fine-tune of the bench ViT. `host` (cpu, or wasm without them): plain loops over Float32Arrays, since the
 * device form costs ~12 kernels a tensor whose dispatch, not arithmetic, dominates. `device` (GPU backends): tf ops.
 */
export class AdamW {
  /** Device moments (GPU backends); empty when `onHost`. */
  readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();
  private readonly hostMoments = new Map<string, { m: Float32Array; v: Float32Array }>();
  readonly onHost: boolean;
  readonly placement: AdamWPlacement;
  step = 0;

  constructor(
    readonly variables: Map<string, tf.Variable>,
    readonly options: AdamWOptions = ADAMW_DEFAULTS,
    placement: AdamWPlacement = defaultPlacement(),
  ) {
    if (placement === 'simd' && !simdKernelsActive())
      throw new Error('AdamW: the SIMD kernels are not active');
    this.placement = placement;
    this.onHost = placement === 'host';
    for (const [name, variable] of variables) {
      if (this.onHost) {
        this.hostMoments.set(name, {
          m: new Float32Array(variable.size),
          v: new Float32Array(variable.size),
        });
      } else this.moments.set(name, { m: zeroVariable(variable), v: zeroVariable(variable) });
    }
  }

  /**
   * clip_grad_norm_(maxNorm) then one step. Gradients are tensors (disposed here) or host arrays (scaled in place),
   * keyed like `variables`; a variable without one is left as it is. Returns the global norm before clipping.
   */
  update(grads: Map<string, tf.Tensor | Float32Array>, learningRate: number, maxNorm: number): number {
    if (this.onHost) {
      const host = new Map<string, Float32Array>();
      for (const [name, g] of grads) {
        if (g instanceof Float32Array) host.set(name, g);
        else {
          host.set(name, new Float32Array(g.dataSync() as Float32Array)); // a copy: cpu hands out its buffer
          g.dispose();
        }
      }
      const norm = clipHostGradients(host, maxNorm);
      this.applyHost(host, learningRate);
      return norm;
    }
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, g] of grads) {
      tensors.set(name, g instanceof Float32Array ? tf.tensor(g, this.variables.get(name)!.shape) : g);
    }
    if (this.placement === 'simd') {
      let squares = 0;
      for (const g of tensors.values()) squares += simdSumSquares(g);
      const norm = Math.sqrt(squares);
      this.applySimd(tensors, learningRate, maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1);
      for (const g of tensors.values()) g.dispose();
      return norm;
    }
    const clipped = clipByGlobalNorm(tensors, maxNorm);
    this.apply(clipped.grads, learningRate);
    for (const g of clipped.grads.values()) g.dispose();
    return clipped.norm;
  }

  /** One step for tensor gradients (no clipping); the caller keeps ownership of `grads`. */
  apply(grads: Map<string, tf.Tensor>, learningRate: number): void {
    if (this.placement === 'simd') {
      this.applySimd(grads, learningRate, 1);
      return;
    }
    if (this.onHost) {
      const host = new Map<string, Float32Array>();
      for (const [name, g] of grads) host.set(name, new Float32Array(g.dataSync() as Float32Array));
      this.applyHost(host, learningRate);
      return;
    }
    this.step += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.options;
    const correction1 = 1 - beta1 ** this.step;
    const correction2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      // One scalar tensor per coefficient per step, shared by every variable (a number argument would upload a
      // new scalar per use).
      const [b1, oneMinusB1, b2, oneMinusB2, eps] = [beta1, 1 - beta1, beta2, 1 - beta2, epsilon].map((c) =>
        tf.scalar(c),
      );
      const decay = tf.scalar(1 - learningRate * weightDecay);
      const invCorrection1 = tf.scalar(1 / correction1);
      const invCorrection2 = tf.scalar(1 / correction2);
      const lr = tf.scalar(learningRate);
      for (const [name, variable] of this.variables) {
        const g = grads.get(name);
        if (!g) continue;
        const { m, v } = this.moments.get(name)!;
        m.assign(tf.add(tf.mul(m, b1), tf.mul(g, oneMinusB1)));
        v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), oneMinusB2)));
        const decayed = variable.shape.length > 1 && weightDecay > 0 ? tf.mul(variable, decay) : variable;
        const update = tf.div(tf.mul(m, invCorrection1), tf.add(tf.sqrt(tf.mul(v, invCorrection2)), eps));
        variable.assign(tf.sub(decayed, tf.mul(update, lr)));
      }
    });
  }

  /** One step by the SIMD kernel, gradients scaled by `gradScale` (the clipping factor) inside the same pass. */
  private applySimd(grads: Map<string, tf.Tensor>, learningRate: number, gradScale: number): void {
    this.step += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.options;
    const shared = {
      stepSize: learningRate / (1 - beta1 ** this.step),
      beta1,
      oneMinusBeta1: 1 - beta1,
      beta2,
      oneMinusBeta2: 1 - beta2,
      eps: epsilon,
      invSqrtCorrection2: 1 / Math.sqrt(1 - beta2 ** this.step),
      gradScale,
    };
    for (const [name, variable] of this.variables) {
      const g = grads.get(name);
      if (!g) continue;
      const { m, v } = this.moments.get(name)!;
      const decay = variable.shape.length > 1 && weightDecay > 0 ? 1 - learningRate * weightDecay : 1;
      tf.tidy(() => {
        const [p1, m1, v1] = simdAdamW(variable, g, m, v, { ...shared, decay });
        variable.assign(p1);
        m.assign(m1);
        v.assign(v1);
      });
    }
  }

  /** One step for host gradients (no clipping): the same arithmetic as `apply`, in float64 per element. */
  private applyHost(grads: Map<string, Float32Array>, learningRate: number): void {
    this.step += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.options;
    const correction1 = 1 - beta1 ** this.step;
    const correction2 = 1 - beta2 ** this.step;
    for (const [name, variable] of this.variables) {
      const g = grads.get(name);
      if (!g) continue;
      const { m, v } = this.hostMoments.get(name)!;
      const p = new Float32Array(variable.dataSync() as Float32Array);
      const decay = variable.shape.length > 1 && weightDecay > 0 ? 1 - learningRate * weightDecay : 1;
      for (let i = 0; i < p.length; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        p[i] =
          p[i] * decay - (learningRate * (m[i] / correction1)) / (Math.sqrt(v[i] / correction2) + epsilon);
      }
      tf.tidy(() => variable.assign(tf.tensor(p, variable.shape)));
    }
  }

  /** A copy of one variable's first and second moments, flat. */
  momentsOf(name: string): { m: Float32Array; v: Float32Array } {
    const host = this.hostMoments.get(name);
    if (host) return { m: host.m.slice(), v: host.v.slice() };
    const device = this.moments.get(name);
    if (!device) throw new Error(`AdamW: no variable ${name}`);
    return { m: device.m.dataSync() as Float32Array, v: device.v.dataSync() as Float32Array };
  }

  /** Restores one variable's moments (a resumed run). */
  setMoments(name: string, m: Float32Array, v: Float32Array): void {
    const host = this.hostMoments.get(name);
    if (host) {
      host.m.set(m);
      host.v.set(v);
      return;
    }
    const device = this.moments.get(name);
    if (!device) throw new Error(`AdamW: no variable ${name}`);
    tf.tidy(() => {
      device.m.assign(tf.tensor(m, device.m.shape));
      device.v.assign(tf.tensor(v, device.v.shape));
    });
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) {
      m.dispose();
      v.dispose();
    }
  }
}

/** Where AdamW keeps its moments and runs its update (see the class). */
export type AdamWPlacement = 'simd' | 'host' | 'device';

/** Backends whose tensors live in this process's memory, where host-side optimizer loops are cheap. */
const HOST_BACKENDS = new Set(['wasm', 'cpu']);

function defaultPlacement(): AdamWPlacement {
  if (simdKernelsActive()) return 'simd';
  return HOST_BACKENDS.has(tf.getBackend()) ? 'host' : 'device';
}

/** clip_grad_norm_ on host gradients, in place; returns the global norm before clipping. */
export function clipHostGradients(grads: Map<string, Float32Array>, maxNorm: number): number {
  let squares = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) squares += g[i] * g[i];
  const norm = Math.sqrt(squares);
  if (!(maxNorm > 0) || norm <= maxNorm) return norm;
  const factor = maxNorm / (norm + 1e-6);
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= factor;
  return norm;
}

function zeroVariable(like: tf.Tensor): tf.Variable {
  const zeros = tf.zerosLike(like);
  const variable = tf.variable(zeros, false);
  zeros.dispose(); // the variable holds its own reference
  return variable;
}

/** torch.nn.utils.clip_grad_norm_: scales all gradients by max/(‖g‖+1e-6) when the global norm exceeds max. */
export function clipByGlobalNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: number } {
  const normTensor = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))));
  const norm = normTensor.dataSync()[0];
  normTensor.dispose();
  if (!(maxNorm > 0) || norm <= maxNorm) return { grads, norm };
  const factor = maxNorm / (norm + 1e-6);
  const clipped = new Map<string, tf.Tensor>();
  for (const [name, g] of grads) {
    clipped.set(
      name,
      tf.tidy(() => tf.mul(g, factor)),
    ); // tidy: the scalar factor is a tensor too
    g.dispose();
  }
  return { grads: clipped, norm };
}
