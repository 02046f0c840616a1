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
import { tf } from '../engine/index.js';
import type { ModelConfig } from '../config.js';
import { writeFileAtomic } from '../fsx.js';
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
  writeFileAtomic(file, Buffer.concat([head, Buffer.from(json, 'utf8'), ...chunks]));
}

/** Bytes per element of the safetensors dtypes. */
export const DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/** A malformed or unusable safetensors file; the message names the file (and the tensor). */
export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Read and validate a safetensors file's header (tensor entries and __metadata__): a header
 * length inside the file, a JSON object, every tensor with a known dtype, a shape of
 * non-negative integers and data_offsets [begin, end] that are non-negative integers, ordered,
 * inside the data, of exactly dtype size x shape bytes, and not overlapping any other
 * tensor's. Every error names the file, and the tensor when there is one.
 */
export function readSafetensorsHeader(file: string): {
  tensors: Record<string, HeaderEntry>;
  metadata: Record<string, string>;
  dataStart: number;
  bytes: Buffer;
} {
  const bytes = fs.readFileSync(file);
  const bad = (msg: string) => new SafetensorsError(`${file}: ${msg}`);
  if (bytes.length < 8) throw bad(`too short to be a safetensors file (${bytes.length} bytes)`);
  const n64 = bytes.readBigUInt64LE(0);
  if (n64 === 0n) throw bad('header length is 0 (a safetensors header is a JSON object of at least 2 bytes)');
  if (n64 > BigInt(bytes.length - 8)) throw bad(`header length ${n64} exceeds the file size ${bytes.length}`);
  const n = Number(n64);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw bad(`header is not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw bad(
      `header must be a JSON object {"<tensor>": {dtype, shape, data_offsets}, ...}, got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed}`,
    );
  const { __metadata__, ...entries } = parsed as Record<string, unknown>;
  if (__metadata__ !== undefined) {
    if (__metadata__ === null || typeof __metadata__ !== 'object' || Array.isArray(__metadata__))
      throw bad('__metadata__ must be an object of strings');
    for (const [k, v] of Object.entries(__metadata__))
      if (typeof v !== 'string') throw bad(`__metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
  }
  const dataLength = bytes.length - 8 - n;
  const tensors: Record<string, HeaderEntry> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(entries)) {
    const t = (msg: string) => bad(`tensor "${name}": ${msg}`);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      throw t(`entry must be an object {dtype, shape, data_offsets}, got ${JSON.stringify(raw)}`);
    const e = raw as Record<string, unknown>;
    if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES))
      throw t(
        `dtype ${JSON.stringify(e.dtype)} is not a safetensors dtype; valid: ${Object.keys(DTYPE_BYTES).join(', ')}`,
      );
    if (!Array.isArray(e.shape) || !e.shape.every(isCount))
      throw t(`shape must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount))
      throw t(`data_offsets must be [begin, end] of non-negative integers, got ${JSON.stringify(off)}`);
    const [begin, end] = off as [number, number];
    if (begin > end) throw t(`data_offsets [${begin}, ${end}] are not ordered (begin > end)`);
    if (end > dataLength)
      throw t(`data_offsets [${begin}, ${end}] reach past the data (${dataLength} bytes after the header)`);
    const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
    const want = count * DTYPE_BYTES[e.dtype];
    if (end - begin !== want)
      throw t(
        `data_offsets [${begin}, ${end}] hold ${end - begin} bytes; ${e.dtype} [${(e.shape as number[]).join(', ')}] needs ${want}`,
      );
    tensors[name] = { dtype: e.dtype, shape: e.shape as number[], data_offsets: [begin, end] };
    if (end > begin) spans.push({ name, begin, end });
  }
  spans.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    const a = spans[i - 1];
    const b = spans[i];
    if (b.begin < a.end)
      throw bad(`tensors "${a.name}" [${a.begin}, ${a.end}] and "${b.name}" [${b.begin}, ${b.end}] overlap`);
  }
  return { tensors, metadata: (__metadata__ ?? {}) as Record<string, string>, dataStart: 8 + n, bytes };
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
    if (!tied)
      throw new SafetensorsError(
        `${file}: unexpected tensor "${name}" [${tensors[name].shape}] not in this model config`,
      );
  }
  const params: Params = new Map();
  try {
    for (const s of specs) {
      const e = tensors[s.name];
      const want = fileShape(s.shape, s.linear);
      if (!e) throw new SafetensorsError(`${file}: tensor "${s.name}" is missing (expected shape [${want}])`);
      if (e.dtype !== 'F32')
        throw new SafetensorsError(`${file}: tensor "${s.name}" has dtype ${e.dtype}, expected F32`);
      if (e.shape.join(',') !== want.join(','))
        throw new SafetensorsError(`${file}: tensor "${s.name}" has shape [${e.shape}], expected [${want}]`);
      const [a, b] = e.data_offsets;
      const count = want.reduce((x, y) => x * y, 1);
      if (b - a !== 4 * count || dataStart + b > bytes.length)
        throw new SafetensorsError(
          `${file}: tensor "${s.name}" data_offsets [${a}, ${b}] do not hold ${count} F32 values`,
        );
      const data = new Float32Array(
        bytes.buffer.slice(bytes.byteOffset + dataStart + a, bytes.byteOffset + dataStart + b),
      );
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
