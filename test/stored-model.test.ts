/**
 * ceg export / ceg sample (src/train/stored-model.ts) on a trained smoke run: the safetensors
 * header lists nanoGPT's parameter names and PyTorch shapes (written out here from nanoGPT's
 * model.py naming, independently of src/model/params.ts), Linear weights are the checkpoint's
 * transposed; sampling follows sample.py's rule (temperature, top-k) and is seeded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunStore } from '../src/runs/index.js';
import { trainRun } from '../src/train/trainer.js';
import { runSpec } from '../src/train/sweep.js';
import { unpackTensors } from '../src/train/checkpoint.js';
import { chooseToken, exportRun, sampleRun, StoredModelError } from '../src/train/stored-model.js';
import { main } from '../src/cli/main.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-stored-'));

/** nanoGPT's state_dict names and shapes (model.py: GPT with tied lm_head stored once). */
function nanoGptNames(
  L: number,
  C: number,
  V: number,
  T: number,
  layerNorms: boolean,
  bias: boolean,
): Record<string, number[]> {
  const out: Record<string, number[]> = { 'transformer.wte.weight': [V, C], 'transformer.wpe.weight': [T, C] };
  for (let i = 0; i < L; i++) {
    const h = `transformer.h.${i}`;
    if (layerNorms)
      Object.assign(
        out,
        { [`${h}.ln_1.weight`]: [C], [`${h}.ln_2.weight`]: [C] },
        bias ? { [`${h}.ln_1.bias`]: [C], [`${h}.ln_2.bias`]: [C] } : {},
      );
    Object.assign(out, {
      [`${h}.attn.c_attn.weight`]: [3 * C, C],
      [`${h}.attn.c_proj.weight`]: [C, C],
      [`${h}.mlp.c_fc.weight`]: [4 * C, C],
      [`${h}.mlp.c_proj.weight`]: [C, 4 * C],
    });
    if (bias)
      Object.assign(out, {
        [`${h}.attn.c_attn.bias`]: [3 * C],
        [`${h}.attn.c_proj.bias`]: [C],
        [`${h}.mlp.c_fc.bias`]: [4 * C],
        [`${h}.mlp.c_proj.bias`]: [C],
      });
  }
  out['transformer.ln_f.weight'] = [C];
  if (bias) out['transformer.ln_f.bias'] = [C];
  return out;
}

test('ceg export of a trained smoke run: nanoGPT names and shapes; Linear weights transposed from the checkpoint', async () => {
  const store = new RunStore(tmp());
  const spec = runSpec('baseline', 'smoke', 1, 'wasm');
  const { run } = await trainRun(spec, store);
  const file = path.join(store.root, 'model.safetensors');
  assert.equal(await main(['export', '--run', run.id, '--out', file, '--runs', store.root]), 0);
  const b = fs.readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const { __metadata__: _m, ...tensors } = header;
  const m = spec.model;
  const want = nanoGptNames(m.nLayer, m.nEmbd, m.vocabSize, m.blockSize, m.norm !== 'none', m.bias);
  assert.deepEqual(Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.shape])), want);
  // c_attn of layer 0: file [3C, C] is the checkpoint's [C, 3C] transposed
  const ck = run.loadCheckpoint()!;
  const state = JSON.parse(ck.files['state.json'].toString('utf8'));
  const mem = unpackTensors(state.tensorIndex, ck.files['tensors.bin']).get(
    'param/transformer.h.0.attn.c_attn.weight',
  )!;
  const e = tensors['transformer.h.0.attn.c_attn.weight'];
  const data = new Float32Array(
    b.buffer.slice(b.byteOffset + 8 + n + e.data_offsets[0], b.byteOffset + 8 + n + e.data_offsets[1]),
  );
  const [C, C3] = mem.shape;
  for (const [r, c] of [
    [0, 0],
    [1, 5],
    [C3 - 1, C - 1],
    [40, 17],
  ])
    assert.equal(data[r * C + c], mem.values[c * C3 + r]);

  // sample: prompt + N characters (char tokenizer), same seed same text, another seed another text
  const o = { prompt: 'The ', tokens: 40, samples: 1, temperature: 0.8, topK: 200, seed: 7 };
  const [a] = await sampleRun(store, run.id, o);
  const [a2] = await sampleRun(store, run.id, o);
  const [c] = await sampleRun(store, run.id, { ...o, seed: 8 });
  assert.ok(a.startsWith('The '));
  assert.equal(a.length, 'The '.length + 40);
  assert.equal(a, a2);
  assert.notEqual(a, c);
  await assert.rejects(exportRun(store, '0123456789abcdef', file), StoredModelError);
});

test("chooseToken: sample.py's rule (logits / T, top-k, softmax, draw); T = 0 is argmax", () => {
  const logits = [0, Math.log(3), -50, 1];
  assert.equal(chooseToken(logits, 0, 10, 0.99), 1);
  assert.equal(chooseToken(logits, 1, 1, 0.99), 1, 'top-1 is argmax whatever the draw');
  // top-2 at T=1 keeps ln 3 and 1 (the two largest): p = 3/(3+e), e/(3+e)
  const p1 = 3 / (3 + Math.E);
  assert.equal(chooseToken(logits, 1, 2, p1 - 1e-9), 1);
  assert.equal(chooseToken(logits, 1, 2, p1 + 1e-9), 3);
  // T = 2 flattens: weights sqrt of the T=1 ones
  const w = logits.map((l) => Math.exp(l / 2));
  const total = w.reduce((x, y) => x + y, 0);
  const cum0 = w[0] / total;
  assert.equal(chooseToken(logits, 2, 10, cum0 - 1e-9), 0);
  assert.equal(chooseToken(logits, 2, 10, cum0 + 1e-9), 1);
});
