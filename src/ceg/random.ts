/**
 * Seeded randomness and bootstrap helpers for the CEG analysis. No Math.random: every
 * resampling is reproducible from its seed.
 */

/** mulberry32: a small, fast 32-bit PRNG. Returns a function giving uniforms in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws by Box–Muller from a uniform source. */
export function normalSampler(uniform: () => number): () => number {
  return () => {
    const u = 1 - uniform();
    const v = uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

/** Linear-interpolated quantile (numpy's default, "type 7") of an unsorted array; q in [0, 1]. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((x, y) => x - y);
  const h = (s.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

export function mean(values: number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Geometric mean of positive values. */
export function geometricMean(values: number[]): number {
  return Math.exp(mean(values.map(Math.log)));
}

export interface BootstrapOptions {
  /** number of resamples (default 2000) */
  resamples?: number;
  /** seed of the resampling (default 0) */
  seed?: number;
  /** confidence level (default 0.95: percentiles 2.5 and 97.5) */
  level?: number;
}

/**
 * Percentile bootstrap of a statistic over items: resample the items with replacement
 * `resamples` times, apply `stat`, and return the (1-level)/2 and (1+level)/2 percentiles.
 * Non-finite statistics of a resample are dropped. With fewer than 2 items there is no
 * interval: returns null.
 */
export function bootstrapCi<T>(
  items: T[],
  stat: (sample: T[]) => number,
  opts: BootstrapOptions = {},
): [number, number] | null {
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  if (items.length < 2) return null;
  const rand = mulberry32(opts.seed ?? 0);
  const stats: number[] = [];
  const sample: T[] = new Array(items.length);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < items.length; i++) sample[i] = items[Math.floor(rand() * items.length)];
    const s = stat(sample);
    if (Number.isFinite(s)) stats.push(s);
  }
  if (stats.length === 0) return null;
  return [quantile(stats, (1 - level) / 2), quantile(stats, (1 + level) / 2)];
}
