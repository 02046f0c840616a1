import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine, tf } from '../src/engine/index.js';
import { parseModelConfig, type ModelConfig } from '../src/config.js';
import { disposeParams, initParams } from '../src/model/params.js';
import { loadSafetensors, saveSafetensors } from '../src/model/safetensors.js';
import { TMP_MARK } from '../src/fsx.js';

const cfg: ModelConfig = parseModelConfig({
  vocabSize: 16,
  blockSize: 8,
  nLayer: 2,
  nHead: 2,
  nEmbd: 8,
  nKvHead: 1,
  dropout: 0,
  bias: true,
  norm: 'rmsnorm',
  positions: 'learned',
  ropeBase: 10000,
  attnKernel: 'plain',
  sparse: { blockSize: 4, localBlocks: 1, selectedBlocks: 1 },
  mlp: 'moe',
  mlpHidden: 12,
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
  assert.ok(!fs.readdirSync(dir).some((f) => f.includes(TMP_MARK) || f.endsWith('.tmp')), 'no temp file left behind');
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
  assert.throws(
    () => loadSafetensors(bad, cfg),
    /tensor "transformer\.h\.1\.mlp\.experts\.0\.c_fc\.weight" has shape \[8,12\], expected \[12,8\]/,
  );
  rewrite(file, bad, (h) => delete h['transformer.ln_f.weight']);
  assert.throws(
    () => loadSafetensors(bad, cfg),
    /tensor "transformer\.ln_f\.weight" is missing \(expected shape \[8\]\)/,
  );
  // (an empty tensor: sharing another tensor's bytes would be an overlap, an error of its own)
  rewrite(
    file,
    bad,
    (h) => (h['transformer.h.0.mlp.c_fc.weight'] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] }),
  );
  assert.throws(() => loadSafetensors(bad, cfg), /unexpected tensor "transformer\.h\.0\.mlp\.c_fc\.weight"/);
  // a config with another width expects other shapes
  assert.throws(
    () => loadSafetensors(file, { ...cfg, nEmbd: 4 }),
    /"transformer\.wte\.weight" has shape \[16,8\], expected \[16,4\]/,
  );
  assert.equal(tf.memory().numTensors, 0, 'failed loads leak no tensors');
});

// ---- issue 18.4: damaged headers are errors naming the file and the tensor, never wrong values

/** A safetensors file from a header object (or raw header text) and a data buffer. */
function craft(name: string, header: unknown, data: Buffer, rawHeader?: string, lengthOverride?: bigint): string {
  const json = Buffer.from(rawHeader ?? JSON.stringify(header), 'utf8');
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat([head, json, data]));
  return file;
}

test('safetensors: every malformed header is a SafetensorsError naming the file (and tensor)', async () => {
  const { readSafetensorsHeader, SafetensorsError } = await import('../src/model/safetensors.js');
  const data = Buffer.alloc(32);
  const ok = {
    a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    b: { dtype: 'F32', shape: [2, 2], data_offsets: [8, 24] },
  };
  // the well-formed file reads (so the cases below fail for their own reason)
  assert.deepEqual(Object.keys(readSafetensorsHeader(craft('ok.st', ok, data)).tensors), ['a', 'b']);
  const cases: [string, string, RegExp][] = [
    ['short.st', '', /too short/],
    ['zero.st', 'len0', /header length is 0/],
    ['long.st', 'len-huge', /header length \d+ exceeds the file size/],
    ['notjson.st', 'raw:{"a": {', /header is not valid JSON/],
    ['null.st', 'raw:null', /header must be a JSON object.*got null/],
    ['array.st', 'raw:[1,2]', /got an array/],
    ['noshape.st', JSON.stringify({ a: { dtype: 'F32', data_offsets: [0, 8] } }), /tensor "a": shape must be an array/],
    [
      'nooffsets.st',
      JSON.stringify({ a: { dtype: 'F32', shape: [2] } }),
      /tensor "a": data_offsets must be \[begin, end\]/,
    ],
    [
      'negative.st',
      JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }),
      /tensor "a": data_offsets must be \[begin, end\] of non-negative integers, got \[-8,0\]/,
    ],
    [
      'fraction.st',
      JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0.5, 8.5] } }),
      /tensor "a": data_offsets must be/,
    ],
    [
      'reversed.st',
      JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }),
      /tensor "a": data_offsets \[8, 0\] are not ordered/,
    ],
    [
      'outside.st',
      JSON.stringify({ a: { dtype: 'F32', shape: [10], data_offsets: [0, 40] } }),
      /tensor "a": data_offsets \[0, 40\] reach past the data \(32 bytes/,
    ],
    [
      'size.st',
      JSON.stringify({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }),
      /tensor "a": data_offsets \[0, 8\] hold 8 bytes; F32 \[3\] needs 12/,
    ],
    [
      'overlap.st',
      JSON.stringify({
        a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
        b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
      }),
      /tensors "a" \[0, 16\] and "b" \[8, 16\] overlap/,
    ],
    [
      'dtype.st',
      JSON.stringify({ a: { dtype: 'F31', shape: [2], data_offsets: [0, 8] } }),
      /tensor "a": dtype "F31" is not a safetensors dtype/,
    ],
    ['entry.st', JSON.stringify({ a: 5 }), /tensor "a": entry must be an object/],
    ['meta.st', JSON.stringify({ __metadata__: { format: 5 } }), /__metadata__\.format must be a string/],
  ];
  for (const [name, spec, want] of cases) {
    let file: string;
    if (spec === '') {
      file = path.join(dir, name);
      fs.writeFileSync(file, Buffer.alloc(5));
    } else if (spec === 'len0') file = craft(name, null, data, '', 0n);
    else if (spec === 'len-huge') file = craft(name, ok, data, undefined, 1n << 40n);
    else if (spec.startsWith('raw:')) file = craft(name, null, data, spec.slice(4));
    else file = craft(name, null, data, spec);
    assert.throws(
      () => readSafetensorsHeader(file),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, `${name}: ${String(e)}`);
        assert.ok(e.message.startsWith(`${file}: `), `${name}: the message names the file: ${e.message}`);
        assert.match(e.message, want, name);
        return true;
      },
    );
  }
});

test('safetensors: overlapping or negative offsets in a model file never load (wrong values), they fail naming the tensor', async () => {
  await initEngine({ backend: 'cpu' });
  const { SafetensorsError } = await import('../src/model/safetensors.js');
  const p = initParams(cfg, 4);
  const good = path.join(dir, 'good.safetensors');
  await saveSafetensors(good, p, cfg);
  disposeParams(p);
  const b = fs.readFileSync(good);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  const data = b.subarray(8 + n);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  // point the second tensor at the first one's bytes (same size): an overlap
  const [first, second] = names.filter(
    (k) =>
      header[k].data_offsets[1] - header[k].data_offsets[0] ===
      header[names[0]].data_offsets[1] - header[names[0]].data_offsets[0],
  );
  assert.ok(first && second, 'two tensors of the same size');
  const overl = structuredClone(header);
  overl[second].data_offsets = [...overl[first].data_offsets];
  const f1 = craft('overlap-model.safetensors', overl, data);
  assert.throws(
    () => loadSafetensors(f1, cfg),
    (e: unknown) =>
      e instanceof SafetensorsError &&
      e.message.includes(f1) &&
      e.message.includes(`"${second}"`) &&
      /overlap/.test(e.message),
  );
  const neg = structuredClone(header);
  neg[first].data_offsets = [-4, neg[first].data_offsets[1] - neg[first].data_offsets[0] - 4];
  const f2 = craft('negative-model.safetensors', neg, data);
  assert.throws(
    () => loadSafetensors(f2, cfg),
    (e: unknown) =>
      e instanceof SafetensorsError &&
      e.message.includes(f2) &&
      e.message.includes(`"${first}"`) &&
      /non-negative/.test(e.message),
  );
});
