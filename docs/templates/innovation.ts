/**
 * Template for a new innovation (docs/add-an-innovation.md). Copy the pieces into the files
 * named in each section, rename `myinnovation` / `mySwitch` / `my_gain`, delete this file's
 * scaffolding. It type-checks (tsconfig includes docs/templates) so it stays in step with the
 * code; nothing imports it.
 */
import { z } from 'zod';
import { tf } from '../../src/engine/index.js';
import type { ModelConfig } from '../../src/config.js';
import { modelSwitch, type Innovation } from '../../src/innovations.js';
import { getParam, type ParamSpec, type Params } from '../../src/model/params.js';

// ---------------------------------------------------------------- 1. src/innovations.ts

/** In MODEL_SWITCHES (only if no existing config field expresses the innovation). */
export const switches = {
  /** myinnovation: what it turns on (absent = off) */
  mySwitch: modelSwitch(),
  /** a valued setting: optional, no default in the schema (absent = the model code's default) */
  myScale: z.number().positive().optional(),
};

/** In the `list` of innovations. */
export const entry: Innovation = {
  id: 'myinnovation',
  label: 'My innovation',
  change: {} /* in the registry: { mySwitch: true } */,
  category: 'not in paper',
  inPaper: false,
  explanation: 'One paragraph: what it computes, and why it might save compute.',
  reference: 'Author et al. year',
  // flopsUnchanged: true, // only when src/model/flops.ts counts the same matmuls as the baseline
};

// ---------------------------------------------------------------- 2. src/model/params.ts

/** The config as it will be typed once the switch is in MODEL_SWITCHES. */
type Cfg = ModelConfig & { mySwitch?: true; myScale?: number };

/** In paramSpecs' per-layer loop (h = `transformer.h.${i}`): each tensor declares its decay group. */
export function specsOf(cfg: Cfg, h: string): ParamSpec[] {
  if (!cfg.mySwitch) return [];
  return [
    // a 1-D gain: init ones, not decayed (a matrix would be init 'normal', linear true, decay true)
    { name: `${h}.my_gain.weight`, shape: [cfg.nEmbd], init: 'ones', linear: false, decay: false },
  ];
}

// ---------------------------------------------------------------- 3. src/model/gpt.ts (or a new src/model file)

/** The part itself, called from the block where it applies: x [B·T, C] -> [B·T, C]. */
export function myPart(params: Params, h: string, x: tf.Tensor2D, cfg: Cfg): tf.Tensor2D {
  if (!cfg.mySwitch) return x;
  const g = getParam(params, `${h}.my_gain.weight`) as unknown as tf.Tensor1D; // [C]
  return tf.tidy(() => tf.mul(tf.mul(x, g), cfg.myScale ?? 1) as tf.Tensor2D);
}

// ---------------------------------------------------------------- 4. src/model/flops.ts
// Count any matmul you add or change in stepFlops (a breakdown key), or declare
// flopsUnchanged in the registry entry.

// ---------------------------------------------------------------- 5. test/myinnovation.test.ts
// Check myPart against a plain-loop reference (values and gradients) at tiny size; the
// registry entry is picked up by test/every-innovation.test.ts without any edit there.
