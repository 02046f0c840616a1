/**
 * The memory limit's estimate (src/train/limits.ts) against an independent reference: the peak
 * tensor bytes tf.profile measures over real training steps. The estimate must never be below
 * the measured peak (else a config that cannot fit would be let through) and not wildly above
 * it (else configs that fit would be refused). Seeds explicit; small smoke configs only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, initEngine } from '../src/engine/index.js';
import { getScale } from '../src/scales.js';
import { applyInnovations } from '../src/innovations.js';
import { initParams, decayedParams } from '../src/model/params.js';
import { usesNativeAttention } from '../src/model/gpt.js';
import { AdamW } from '../src/train/adamw.js';
import { trainStep, stepState } from '../src/train/step.js';
import { ConfigError } from '../src/config.js';
import { INNOVATIONS } from '../src/innovations.js';
import { resolveScale } from '../src/scales.js';
import {
  estimateTrainingMemory,
  checkTrainingLimits,
  WASM_HEAP_BYTES,
  MAX_TENSOR_ELEMENTS,
} from '../src/train/limits.js';

async function measuredPeak(innovation: string, model: Record<string, unknown>, train: Record<string, unknown> = {}) {
  const s = getScale('smoke');
  const cfg = applyInnovations({ ...s.model, ...model }, [innovation]);
  const tc = { ...s.train, ...train };
  const prof = await tf.profile(async () => {
    const params = initParams(cfg, 11);
    const opt = new AdamW(params, {
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.1,
      decayed: decayedParams(cfg),
    });
    const st = stepState(params, opt, cfg, tc);
    const x = new Int32Array(tc.batchSize * cfg.blockSize).map((_, i) => (i * 7) % 97);
    for (let k = 0; k < 2; k++)
      await trainStep(
        st,
        1e-3,
        () => ({ x, y: x }),
        () => k + 1,
      );
    for (const p of params.values()) p.dispose();
    opt.dispose();
    return tf.scalar(0);
  });
  // the estimate of the path this machine runs (the native attention kernel where the addon serves wasm)
  return {
    peak: prof.peakBytes,
    estimate: estimateTrainingMemory(cfg, tc, { nativeAttention: usesNativeAttention(cfg, true) }).total,
  };
}

test('the memory estimate is at least the measured peak of real training steps, and within 3x of it', async () => {
  await initEngine({ backend: 'wasm' });
  const cases: [string, Record<string, unknown>, Record<string, unknown>?][] = [
    ['baseline', { blockSize: 256 }],
    ['fused', { blockSize: 256 }],
    ['sparse', { blockSize: 256 }],
    ['blocksparse', { blockSize: 256 }],
    ['moe', { blockSize: 64 }],
    ['swiglu', { nEmbd: 64, mlpHidden: 256 }, { batchSize: 8 }],
    ['layernorm', { nLayer: 3, nEmbd: 96, mlpHidden: 384 }],
  ];
  for (const [inn, m, t] of cases) {
    const { peak, estimate } = await measuredPeak(inn, m, t);
    const what = `${inn} ${JSON.stringify(m)} ${JSON.stringify(t ?? {})}: estimate ${estimate}, measured peak ${peak}`;
    assert.ok(estimate >= peak, `under-estimate: ${what}`);
    assert.ok(estimate <= 3 * peak, `over-estimate: ${what}`);
  }
});

test('a refused config names the field and value, and the suggested largest value is consistent with the check', () => {
  const s = getScale('smoke');
  const m = { ...s.model, blockSize: 4096 };
  let msg = '';
  assert.throws(
    () => checkTrainingLimits(m, s.train, 'wasm', ['model.blockSize']),
    (e: Error) => e instanceof ConfigError && Boolean((msg = e.message)),
  );
  assert.match(
    msg,
    /^model\.blockSize 4096 is too large to train on wasm: .* more than the 4\.0 GiB .* can be at most about (\d+)$/,
  );
  const max = Number(/at most about (\d+)$/.exec(msg)![1]);
  assert.ok(estimateTrainingMemory({ ...m, blockSize: max }, s.train).total <= WASM_HEAP_BYTES);
  assert.ok(estimateTrainingMemory({ ...m, blockSize: max + 1 }, s.train).total > WASM_HEAP_BYTES);
  assert.doesNotThrow(() => checkTrainingLimits({ ...m, blockSize: max }, s.train, 'wasm'));
  // the field the user changed is the one blamed, even when another would also do
  assert.throws(
    () =>
      checkTrainingLimits({ ...s.model, blockSize: 4096 }, { ...s.train, batchSize: 4 }, 'wasm', ['model.blockSize']),
    /^ConfigError: model\.blockSize|model\.blockSize 4096/,
  );
  // a tensor beyond typed arrays
  assert.throws(
    () => checkTrainingLimits({ ...s.model, nEmbd: 1e6 }, s.train, 'wasm', ['model.nEmbd']),
    new RegExp(`model\\.nEmbd 1000000 .* more than the ${MAX_TENSOR_ELEMENTS} one tensor can hold`),
  );
  // every scale the project ships for CPUs passes; GPU backends are not limited here
  for (const name of ['smoke', 'micro', 'micro-r3'])
    for (const { id } of INNOVATIONS) {
      const sc = resolveScale(name);
      assert.doesNotThrow(
        () => checkTrainingLimits(applyInnovations(sc.model, [id]), sc.train, 'wasm'),
        `${id} at ${name}`,
      );
    }
  assert.doesNotThrow(() => checkTrainingLimits(getScale('full').model, getScale('full').train, 'webgpu'));
});
