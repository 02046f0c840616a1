/**
 * Demo (placeholder for `npm start` until the trainer lands): initialise the micro-scale
 * baseline on wasm, run one forward/backward on random tokens, print loss, time and size.
 *   npx tsx scripts/demo-forward.ts [innovation ...]      e.g. `... rope layernorm`
 */
import { initEngine, tf } from '../src/engine/index.js';
import { getScale } from '../src/scales.js';
import { applyInnovations } from '../src/innovations.js';
import { initParams, paramCount, disposeParams } from '../src/model/params.js';
import { gptLoss } from '../src/model/gpt.js';
import { stepFlops } from '../src/model/flops.js';

async function main(): Promise<void> {
  const info = await initEngine({ verbose: true });
  const scale = getScale('micro');
  const ids = process.argv.slice(2);
  const cfg = applyInnovations(scale.model, ids);
  const B = scale.train.batchSize;
  const T = cfg.blockSize;
  const params = initParams(cfg, 1337);
  const vars = [...params.values()];
  const idx = tf.randomUniform([B, T], 0, cfg.vocabSize, 'int32', 1) as tf.Tensor2D;
  const tgt = tf.randomUniform([B, T], 0, cfg.vocabSize, 'int32', 2) as tf.Tensor2D;
  const step = () => {
    const t0 = performance.now();
    const { value, grads } = tf.variableGrads(() => gptLoss(params, idx, tgt, cfg, { training: true, seed: 1 }).loss, vars);
    const loss = value.dataSync()[0];
    for (const g of Object.values(grads)) g.dataSync();
    const ms = performance.now() - t0;
    value.dispose();
    tf.dispose(grads);
    return { loss, ms };
  };
  step(); // warm-up (kernel set-up)
  const { loss, ms } = step();
  const flops = stepFlops(cfg, B * T);
  console.log(`model      micro ${ids.length ? ids.join('+') : 'baseline'} on ${info.backend}`);
  console.log(`params     ${paramCount(cfg).toLocaleString('en')} (non-embedding ${paramCount(cfg, { nonEmbedding: true }).toLocaleString('en')})`);
  console.log(`batch      ${B} x ${T} tokens`);
  console.log(`loss       ${loss.toFixed(4)} (ln V = ${Math.log(cfg.vocabSize).toFixed(4)})`);
  console.log(`fwd+bwd    ${ms.toFixed(0)} ms, ${(flops.total / 1e9).toFixed(2)} GFLOP, ${(flops.total / 1e6 / ms).toFixed(2)} GFLOP/s`);
  disposeParams(params);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
