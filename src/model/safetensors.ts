/**
 * Save and load model parameters in the safetensors format
 * (https://github.com/huggingface/safetensors):
 *   [8 bytes: header length n, u64 little-endian][n bytes: JSON header, space-padded][raw data]
 * Header: { "__metadata__": { "format": "pt", "config": "<ModelConfig JSON>" },
 *           "<name>": { "dtype": "F32", "shape": [...], "data_offsets": [begin, end] }, ... }
 * Tensors are stored in nanoGPT's PyTorch layout: Linear weights [out, in] (transposed from the
 * in-memory [in, out]); embeddings, biases and norm gains as they are. The tied lm_head is stored
 * once, as transformer.wte.weight; a file that also holds lm_head.weight [V, C] loads (it is ignored).
 * Writes go to a temporary file that is renamed into place (atomic on one filesystem).
 */
import fs from 'node:fs';
import path from 'node:path';
import { tf } from '../engine/index.js';
import type { ModelConfig } from '../config.js';
import { paramSpecs, type Params } from './params.js';

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const fileShape = (shape: number[], linear: boolean) => (linear ? [shape[1], shape[0]] : shape);

/** Write params (for cfg) to `file` atomically. */
export async function saveSafetensors(file: string, params: Params, cfg: ModelConfig): Promise<void> {
  const specs = paramSpecs(cfg);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', config: JSON.stringify(cfg) } };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const s of specs) {
    const v = params.get(s.name);
    if (!v) throw new Error(`saveSafetensors: parameter "${s.name}" is missing from params`);
    if (v.shape.join(',') !== s.shape.join(','))
      throw new Error(`saveSafetensors: "${s.name}" has shape [${v.shape}], expected [${s.shape}]`);
    const t = s.linear ? tf.transpose(v) : v;
    const data = (await t.data()) as Float32Array;
    if (t !== v) t.dispose();
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    header[s.name] = { dtype: 'F32', shape: fileShape(s.shape, s.linear), data_offsets: [offset, offset + buf.length] };
    chunks.push(buf);
    offset += buf.length;
  }
  const extra = [...params.keys()].filter((k) => !specs.some((s) => s.name === k));
  if (extra.length) throw new Error(`saveSafetensors: params hold names the config does not: ${extra.join(', ')}`);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // align the data to 8 bytes
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, Buffer.concat([head, Buffer.from(json, 'utf8'), ...chunks]));
  fs.renameSync(tmp, file);
}

/** Read a safetensors file's header (tensor entries and __metadata__). */
export function readSafetensorsHeader(file: string): { tensors: Record<string, HeaderEntry>; metadata: Record<string, string>; dataStart: number; bytes: Buffer } {
  const bytes = fs.readFileSync(file);
  if (bytes.length < 8) throw new Error(`${file}: too short to be a safetensors file (${bytes.length} bytes)`);
  const n = Number(bytes.readBigUInt64LE(0));
  if (8 + n > bytes.length) throw new Error(`${file}: header length ${n} exceeds the file size ${bytes.length}`);
  const parsed = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const { __metadata__, ...tensors } = parsed;
  return {
    tensors: tensors as Record<string, HeaderEntry>,
    metadata: (__metadata__ ?? {}) as Record<string, string>,
    dataStart: 8 + n,
    bytes,
  };
}

/**
 * Load params for cfg from `file`. Throws an Error naming the tensor when one is missing,
 * extra, not F32, or shaped differently from what cfg expects (file layout).
 */
export function loadSafetensors(file: string, cfg: ModelConfig): Params {
  const { tensors, dataStart, bytes } = readSafetensorsHeader(file);
  const specs = paramSpecs(cfg);
  const known = new Set(specs.map((s) => s.name));
  for (const name of Object.keys(tensors)) {
    if (known.has(name)) continue;
    const tied = name === 'lm_head.weight' && tensors[name].shape.join(',') === `${cfg.vocabSize},${cfg.nEmbd}`;
    if (!tied) throw new Error(`${file}: unexpected tensor "${name}" [${tensors[name].shape}] not in this model config`);
  }
  const params: Params = new Map();
  try {
    for (const s of specs) {
      const e = tensors[s.name];
      const want = fileShape(s.shape, s.linear);
      if (!e) throw new Error(`${file}: tensor "${s.name}" is missing (expected shape [${want}])`);
      if (e.dtype !== 'F32') throw new Error(`${file}: tensor "${s.name}" has dtype ${e.dtype}, expected F32`);
      if (e.shape.join(',') !== want.join(','))
        throw new Error(`${file}: tensor "${s.name}" has shape [${e.shape}], expected [${want}]`);
      const [a, b] = e.data_offsets;
      const count = want.reduce((x, y) => x * y, 1);
      if (b - a !== 4 * count || dataStart + b > bytes.length)
        throw new Error(`${file}: tensor "${s.name}" data_offsets [${a}, ${b}] do not hold ${count} F32 values`);
      const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + dataStart + a, bytes.byteOffset + dataStart + b));
      const t = tf.tidy(() => {
        const x = tf.tensor(data, want, 'float32');
        return s.linear ? tf.transpose(x) : x;
      });
      params.set(s.name, tf.variable(t, true));
      t.dispose();
    }
  } catch (err) {
    for (const v of params.values()) v.dispose();
    throw err;
  }
  return params;
}
