import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine, tf } from '../src/engine/index.js';
import { parseModelConfig, type ModelConfig } from '../src/config.js';
import { disposeParams, initParams } from '../src/model/params.js';
import { loadSafetensors, saveSafetensors } from '../src/model/safetensors.js';

const cfg: ModelConfig = parseModelConfig({
  vocabSize: 16, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8, nKvHead: 1, dropout: 0, bias: true,
  norm: 'rmsnorm', positions: 'learned', ropeBase: 10000, attnKernel: 'plain',
  sparse: { blockSize: 4, localBlocks: 1, selectedBlocks: 1 }, mlp: 'moe', mlpHidden: 12,
  moe: { experts: 2, topK: 1, auxLossWeight: 0.01 },
});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-st-'));

/** Parse a safetensors file by hand (independent of the loader). */
function parse(file: string) {
  const b = fs.readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  const tensor = (name: string) => {
    const [s, e] = header[name].data_offsets;
    const out: number[] = [];
    for (let o = 8 + n + s; o < 8 + n + e; o += 4) out.push(b.readFloatLE(o));
    return out;
  };
  return { n, header, tensor };
}

test('round trip, standard layout: header, F32, Linear weights stored [out, in], config metadata', async () => {
  await initEngine({ backend: 'cpu' });
  const p = initParams(cfg, 4);
  const file = path.join(dir, 'model.safetensors');
  await saveSafetensors(file, p, cfg);
  assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temp file left behind');
  const { n, header, tensor } = parse(file);
  assert.equal((8 + n) % 8, 0);
  assert.deepEqual(JSON.parse(header.__metadata__.config), cfg);
  const w = 'transformer.h.0.attn.c_attn.weight'; // in memory [8, 8 + 2·4] -> file [16, 8]
  assert.equal(header[w].dtype, 'F32');
  assert.deepEqual(header[w].shape, [16, 8]);
  const mem = p.get(w)!.arraySync() as number[][];
  const onDisk = tensor(w);
  for (let o = 0; o < 16; o++) for (let i = 0; i < 8; i++) assert.equal(onDisk[o * 8 + i], mem[i][o]);
  assert.deepEqual(header['transformer.wte.weight'].shape, [16, 8]);
  assert.deepEqual(header['transformer.h.1.mlp.router.weight'].shape, [2, 8]);
  assert.equal(Object.keys(header).length - 1, p.size);

  const q = loadSafetensors(file, cfg);
  assert.deepEqual([...q.keys()], [...p.keys()]);
  for (const [name, v] of p) assert.deepEqual(q.get(name)!.dataSync(), v.dataSync(), name);
  disposeParams(p);
  disposeParams(q);
});

/** Rewrite a file's header through `edit` (data kept). */
function rewrite(src: string, dst: string, edit: (h: Record<string, any>) => void) {
  const b = fs.readFileSync(src);
  const n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  edit(h);
  const json = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(dst, Buffer.concat([len, json, b.subarray(8 + n)]));
}

test('mis-shaped, missing and extra tensors are errors naming the tensor and the shapes', async () => {
  await initEngine({ backend: 'cpu' });
  const p = initParams(cfg, 4);
  const file = path.join(dir, 'ok.safetensors');
  await saveSafetensors(file, p, cfg);
  disposeParams(p);
  const bad = path.join(dir, 'bad.safetensors');
  rewrite(file, bad, (h) => (h['transformer.h.1.mlp.experts.0.c_fc.weight'].shape = [8, 12]));
  assert.throws(() => loadSafetensors(bad, cfg), /tensor "transformer\.h\.1\.mlp\.experts\.0\.c_fc\.weight" has shape \[8,12\], expected \[12,8\]/);
  rewrite(file, bad, (h) => delete h['transformer.ln_f.weight']);
  assert.throws(() => loadSafetensors(bad, cfg), /tensor "transformer\.ln_f\.weight" is missing \(expected shape \[8\]\)/);
  rewrite(file, bad, (h) => (h['transformer.h.0.mlp.c_fc.weight'] = h['transformer.wte.weight']));
  assert.throws(() => loadSafetensors(bad, cfg), /unexpected tensor "transformer\.h\.0\.mlp\.c_fc\.weight"/);
  // a config with another width expects other shapes
  assert.throws(() => loadSafetensors(file, { ...cfg, nEmbd: 4 }), /"transformer\.wte\.weight" has shape \[16,8\], expected \[16,4\]/);
  assert.equal(tf.memory().numTensors, 0, 'failed loads leak no tensors');
});
