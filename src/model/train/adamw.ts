import * as tf from '@tensorflow/tfjs';

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
 */
export class AdamW {
  readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();
  step = 0;

  constructor(
    readonly variables: Map<string, tf.Variable>,
    readonly options: AdamWOptions = ADAMW_DEFAULTS,
  ) {
    for (const [name, variable] of variables) {
      this.moments.set(name, { m: zeroVariable(variable), v: zeroVariable(variable) });
    }
  }

  apply(grads: Map<string, tf.Tensor>, learningRate: number): void {
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

  dispose(): void {
    for (const { m, v } of this.moments.values()) {
      m.dispose();
      v.dispose();
    }
  }
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
