/**
 * Seeded batch sampling, as nanoGPT's get_batch: B random windows of T+1 tokens; x is the
 * first T of each window, y the last T (the next-token targets).
 *
 * Randomness comes from an explicit, serialisable PRNG: xoshiro128** (Blackman & Vigna)
 * seeded through splitmix32. Its whole state is four uint32 numbers, so a trainer can store
 * `rng.state()` in a checkpoint and `restoreRng(state)` continues the exact same stream.
 */
import { DataError } from './errors.js';

export const RNG_ALGORITHM = 'xoshiro128**';

/** Plain, JSON-serialisable PRNG state. */
export interface RngState {
  algorithm: typeof RNG_ALGORITHM;
  /** four uint32 words, not all zero */
  s: [number, number, number, number];
}

export interface Rng {
  /** next uint32 in [0, 2^32) */
  nextUint32(): number;
  /** uniform float in [0, 1) with 32 random bits */
  nextFloat(): number;
  /** uniform integer in [0, n), unbiased (rejection sampling); n in 1..2^32 */
  nextInt(n: number): number;
  /** a copy of the current state */
  state(): RngState;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function makeRng(s: Uint32Array): Rng {
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  };
  return {
    nextUint32,
    nextFloat: () => nextUint32() / 4294967296,
    nextInt(n: number): number {
      if (!Number.isInteger(n) || n < 1 || n > 4294967296)
        throw new DataError(`rng.nextInt: n must be an integer in 1..2^32, got ${n}`);
      const limit = 4294967296 - (4294967296 % n); // largest multiple of n <= 2^32
      for (;;) {
        const r = nextUint32();
        if (r < limit) return r % n;
      }
    },
    state: () => ({ algorithm: RNG_ALGORITHM, s: [s[0], s[1], s[2], s[3]] }),
  };
}

/** splitmix32 step: returns [new state, output]. */
function splitmix32(x: number): [number, number] {
  const next = (x + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/** A PRNG from a seed: any non-negative safe integer (0 included). */
export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new DataError(`seed must be a non-negative safe integer, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let x = (lo ^ Math.imul(hi, 0x2545f491)) >>> 0;
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) [x, s[i]] = splitmix32(x);
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1; // the one forbidden xoshiro state
  return makeRng(s);
}

/** A PRNG that continues exactly where the one that produced `state` was. */
export function restoreRng(state: RngState): Rng {
  const ok =
    state != null &&
    state.algorithm === RNG_ALGORITHM &&
    Array.isArray(state.s) &&
    state.s.length === 4 &&
    state.s.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) &&
    state.s.some((w) => w !== 0);
  if (!ok)
    throw new DataError(
      `invalid rng state ${JSON.stringify(state)}; expected {algorithm: "${RNG_ALGORITHM}", s: [4 uint32, not all 0]}`,
    );
  return makeRng(Uint32Array.from(state.s));
}

// ---------------------------------------------------------------- batches

/**
 * A read-only token sequence: a Uint16Array, or a token file read window by window
 * (FileTokens in tokenfiles.ts, for files too large to hold in memory, such as OpenWebText's
 * 17 GB train.bin). subarray(begin, end) returns tokens[begin, end).
 */
export interface TokenSeq {
  readonly length: number;
  subarray(begin: number, end: number): Uint16Array;
}

export interface Batch {
  /** inputs, row-major [B, T] */
  x: Int32Array;
  /** targets, row-major [B, T]: y[b, t] = tokens[offset_b + t + 1] */
  y: Int32Array;
  batchSize: number;
  blockSize: number;
}

function checkShape(n: number, batchSize: number, blockSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new DataError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new DataError(`blockSize must be a positive integer, got ${blockSize}`);
  if (n < blockSize + 1)
    throw new DataError(
      `token array has ${n} tokens, fewer than blockSize + 1 = ${blockSize + 1}: cannot cut one window of inputs and targets`,
    );
}

/** Window starts for one batch: B draws, uniform in [0, len - T - 1] (nanoGPT: randint(len - T)). */
export function sampleOffsets(length: number, batchSize: number, blockSize: number, rng: Rng): number[] {
  checkShape(length, batchSize, blockSize);
  const offsets = new Array<number>(batchSize);
  for (let b = 0; b < batchSize; b++) offsets[b] = rng.nextInt(length - blockSize);
  return offsets;
}

/** The batch whose rows start at `offsets` (each row: x = tokens[o..o+T), y = tokens[o+1..o+T]). */
export function batchFromOffsets(tokens: TokenSeq, offsets: readonly number[], blockSize: number): Batch {
  checkShape(tokens.length, offsets.length, blockSize);
  const B = offsets.length;
  const T = blockSize;
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const o = offsets[b];
    if (!Number.isInteger(o) || o < 0 || o + T + 1 > tokens.length)
      throw new DataError(
        `offset ${o} (row ${b}) is outside 0..${tokens.length - T - 1} for ${tokens.length} tokens and blockSize ${T}`,
      );
    const w = tokens.subarray(o, o + T + 1); // one read of T + 1 tokens from a file-backed sequence
    x.set(w.subarray(0, T), b * T);
    y.set(w.subarray(1, T + 1), b * T);
  }
  return { x, y, batchSize: B, blockSize: T };
}

/** One random training batch (advances `rng` by at least batchSize draws). */
export function sampleBatch(tokens: TokenSeq, batchSize: number, blockSize: number, rng: Rng): Batch {
  return batchFromOffsets(tokens, sampleOffsets(tokens.length, batchSize, blockSize, rng), blockSize);
}

/**
 * Offsets of n fixed evaluation batches: the same for the same (length, n, B, T, seed).
 * Use with batchFromOffsets to build them one at a time (large eval sets use less memory).
 */
export function evalBatchOffsets(
  length: number,
  n: number,
  batchSize: number,
  blockSize: number,
  seed: number,
): number[][] {
  if (!Number.isInteger(n) || n < 1) throw new DataError(`number of eval batches must be a positive integer, got ${n}`);
  const rng = createRng(seed);
  return Array.from({ length: n }, () => sampleOffsets(length, batchSize, blockSize, rng));
}

/** n validation batches that are the same on every call with the same arguments. */
export function fixedEvalBatches(
  val: TokenSeq,
  n: number,
  batchSize: number,
  blockSize: number,
  seed: number,
): Batch[] {
  return evalBatchOffsets(val.length, n, batchSize, blockSize, seed).map((o) => batchFromOffsets(val, o, blockSize));
}
