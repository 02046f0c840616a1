/**
 * Trainer checkpoints: named float32 tensors packed into one binary file with a JSON index,
 * plus the scalar state needed to resume bit-for-bit (step, optimizer t, RNG state,
 * counters). The run store writes the files atomically (src/runs).
 */
import type { tf } from '../engine/index.js';

export interface TensorIndexEntry {
  name: string;
  shape: number[];
  /** offset and length in float32 elements */
  offset: number;
  length: number;
}

/** Pack tensors into (index, bytes). Reads values asynchronously (works on every backend). */
export async function packTensors(
  tensors: Iterable<[string, tf.Tensor]>,
): Promise<{ index: TensorIndexEntry[]; bytes: Buffer }> {
  const index: TensorIndexEntry[] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const data = (await t.data()) as Float32Array;
    index.push({ name, shape: t.shape.slice(), offset, length: data.length });
    chunks.push(data);
    offset += data.length;
  }
  const all = new Float32Array(offset);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return { index, bytes: Buffer.from(all.buffer, all.byteOffset, all.byteLength) };
}

/** Unpack into a map name -> values, checking sizes. */
export function unpackTensors(
  index: TensorIndexEntry[],
  bytes: Buffer,
): Map<string, { shape: number[]; values: Float32Array }> {
  const total = index.reduce((s, e) => s + e.length, 0);
  if (bytes.byteLength !== total * 4) {
    throw new Error(`checkpoint tensors file has ${bytes.byteLength} bytes, index expects ${total * 4}`);
  }
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const e of index) out.set(e.name, { shape: e.shape, values: all.subarray(e.offset, e.offset + e.length) });
  return out;
}
