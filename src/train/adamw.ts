/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW:
 *   p ← p · (1 − lr·wd)                       (decayed parameters only: 2-D weights)
 *   m ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
 *   p ← p − lr · (m / (1 − β1ᵗ)) / (sqrt(v / (1 − β2ᵗ)) + ε)
 * plus gradient clipping by global norm (torch.nn.utils.clip_grad_norm_).
 * State (m, v, t) is exposed for checkpoints.
 */
import { tf } from '../engine/index.js';
import { adamwUpdate, sumOfSquares } from '../engine/fused.js';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** which parameters get weight decay */
  decayed: (name: string) => boolean;
}

export class AdamW {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  /** number of updates applied */
  t = 0;

  constructor(
    private readonly params: Map<string, tf.Variable>,
    private readonly opts: AdamWOptions,
  ) {
    for (const [name, p] of params) {
      // unnamed (tfjs variable names are process-global); tidy frees the zeros tensors
      this.m.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
      );
      this.v.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
      );
    }
  }

  /**
   * Apply one update with learning rate `lr`; consumes (disposes) nothing of `grads`. With
   * `gradScale` (a scalar, e.g. clipCoefficient's), the update uses g·gradScale, computed inside
   * the fused AdamW pass.
   */
  step(grads: Map<string, tf.Tensor>, lr: number, gradScale?: tf.Scalar): void {
    const { beta1, beta2, eps, weightDecay } = this.opts;
    this.t += 1;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = grads.get(name);
        if (!g) throw new Error(`AdamW: no gradient for parameter "${name}"`);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const decay = this.opts.decayed(name) ? 1 - lr * weightDecay : 1;
        // one fused pass on wasm/cpu (src/engine/fused.ts), the same formula in tf ops elsewhere
        const [p1, m1, v1] = adamwUpdate(p, m, v, g, { lr, beta1, beta2, eps, decay, bc1, bc2 }, gradScale);
        m.assign(m1);
        v.assign(v1);
        p.assign(p1);
      }
    });
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}

/**
 * Scale gradients so their global L2 norm is at most maxNorm (torch's clip_grad_norm_:
 * coefficient min(1, maxNorm / (norm + 1e-6))), computed on the device with no read-back, so
 * it works on every backend (webgpu cannot read synchronously). Replaced gradients are
 * disposed. Returns the norm before clipping as a scalar tensor, owned by the caller.
 */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): tf.Scalar {
  const { norm, coef } = clipCoefficient(grads, maxNorm);
  if (coef) {
    for (const [name, g] of grads) {
      grads.set(name, tf.mul(g, coef));
      g.dispose();
    }
    coef.dispose();
  }
  return norm;
}

/**
 * The global gradient norm and clipping coefficient min(1, maxNorm / (norm + 1e-6)) without
 * applying it (null when maxNorm <= 0): pass `coef` to AdamW.step as its gradScale and the
 * scaling happens inside the fused update (the same float products as clipByGlobalNorm's
 * Multiply, one pass fewer per tensor). Both scalars are owned by the caller.
 */
export function clipCoefficient(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): { norm: tf.Scalar; coef: tf.Scalar | null } {
  // Σ g² over every gradient in one fused kernel on wasm/cpu (src/engine/fused.ts), tf ops elsewhere
  const norm = tf.tidy(() => tf.sqrt(sumOfSquares([...grads.values()])) as tf.Scalar);
  const coef = maxNorm > 0 ? tf.tidy(() => tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6))) as tf.Scalar) : null;
  return { norm, coef };
}
