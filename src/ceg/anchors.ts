/**
 * Anchors: other studies' measurements beside ours, as data with their citations (issue #15).
 * - The paper (Sanderson et al. 2025): its compact and full CEGs live in ./published.ts and its
 *   dependent/independent labels in src/innovations.ts; `paperAnchors` puts them in one row
 *   per innovation.
 * - Gundlach et al. 2025, "On the Origin of Algorithmic Progress in AI" (arXiv 2511.21622):
 *   their ablation CEGs (`GUNDLACH_PAIRS`) and their final scaling points
 *   (data/anchors/gundlach-scaling-final-points.csv, `parseGundlachCsv`).
 * `relativeToReference` puts frontiers of different studies on one axis: loss relative to the
 * study's own reference frontier at equal compute (interpolated in log C, never extrapolated).
 */
import { csvRows } from '../runs/import.js';
import { getInnovation } from '../innovations.js';
import { PUBLISHED } from './published.js';
import { CegError } from './types.js';

export const GUNDLACH_CITATION =
  'Gundlach et al. 2025, "On the Origin of Algorithmic Progress in AI", arXiv 2511.21622';
export const PAPER_CITATION =
  'Sanderson et al. 2025, "Rethinking LLM Advancement: Compute-Dependent and Independent Paths to Progress"';

/** One of Gundlach et al.'s ablations: CEG of `to` over `from`, both with a per-variant tuned LR. */
export interface AnchorPair {
  /** readable names as they give them */
  from: string;
  to: string;
  ceg: number;
  /** training FLOPs at which they measured it */
  atFlops: number;
  /** the same comparison in this project's study: `variant` against `reference` (src/plans.ts comparisons), both directions where they exist */
  ours: { add: { variant: string; reference: string } | null; remove: { variant: string; reference: string } | null };
  citation: string;
  note: string;
}

/**
 * Gundlach et al.'s ablation CEGs, measured at ~1.5e15 FLOPs with a tuned LR per variant. Ours:
 * "add" measures the innovation added to the older model, "remove" the modern stack against
 * itself without it (src/plans.ts comparisonsFor).
 */
export const GUNDLACH_PAIRS: readonly AnchorPair[] = [
  {
    from: 'post-LN',
    to: 'pre-LN',
    ceg: 1.87,
    atFlops: 1.5e15,
    ours: {
      add: { variant: 'layernorm', reference: 'postln' },
      remove: { variant: 'modern', reference: 'modern_postnorm' },
    },
    citation: GUNDLACH_CITATION,
    note: 'ours "remove": pre-RMSNorm vs post-RMSNorm in the modern stack',
  },
  {
    from: 'learned positions',
    to: 'RoPE',
    ceg: 1.26,
    atFlops: 1.5e15,
    ours: {
      add: { variant: 'rope', reference: 'baseline' },
      remove: { variant: 'modern', reference: 'modern_learned' },
    },
    citation: GUNDLACH_CITATION,
    note: 'sinusoidal -> RoPE: 1.44x (we have no sinusoidal variant); ours "add" is on the no-norm baseline',
  },
  {
    from: 'GELU',
    to: 'SwiGLU',
    ceg: 1.17,
    atFlops: 1.5e15,
    ours: {
      add: { variant: 'swiglu', reference: 'baseline' },
      remove: { variant: 'modern', reference: 'modern_gelu' },
    },
    citation: GUNDLACH_CITATION,
    note: 'ours "add" is on the no-norm baseline',
  },
  {
    from: 'LayerNorm',
    to: 'RMSNorm',
    ceg: 1.09,
    atFlops: 1.5e15,
    ours: {
      add: { variant: 'rmsnorm', reference: 'layernorm' },
      remove: { variant: 'modern', reference: 'modern_layernorm' },
    },
    citation: GUNDLACH_CITATION,
    note: '',
  },
];

/** The paper's numbers for one innovation: compact and full CEG (null: did not reach, DNR) and its label. */
export interface PaperAnchor {
  innovation: string;
  compact: number | null;
  compactAux: number | null;
  full: number | null;
  /** the paper's category (src/innovations.ts) */
  category: string;
  citation: string;
}

export function paperAnchors(): PaperAnchor[] {
  return PUBLISHED.compact.map((c) => {
    const f = PUBLISHED.full.find((x) => x.innovation === c.innovation) ?? null;
    return {
      innovation: c.innovation,
      compact: c.ceg,
      compactAux: c.auxCeg,
      full: f?.ceg ?? null,
      category: getInnovation(c.innovation).category,
      citation: PAPER_CITATION,
    };
  });
}

/** One final scaling point of Gundlach et al. (the last row of one run; loss NaN where their run logged nan). */
export interface GundlachPoint {
  series: string;
  hiddenDim: number;
  loss: number;
  flops: number;
  tokens: number;
}

/** Their series and what each is (data/anchors/README.md). */
export const GUNDLACH_SERIES: Record<string, string> = {
  x2_modern: 'modern transformer (per-width LR)',
  x1_historical: '2017 transformer (per-width LR)',
  x1_rms_historical: '2017 transformer with RMSNorm (per-width LR)',
  x1_modern_all_lr_trend: 'modern transformer (LR from a width trend)',
  x1_all_lr_historical_trend: '2017 transformer (LR from a width trend)',
  x1_lstm_layer1: 'LSTM (1 layer)',
};

export function parseGundlachCsv(text: string, file = 'gundlach-scaling-final-points.csv'): GundlachPoint[] {
  const rows = csvRows(text);
  if (rows.length === 0) throw new CegError(`${file}: empty`);
  const h = rows[0].cells;
  const need = ['series', 'hidden_dim', 'final_val_loss', 'train_flops_profiler', 'train_tokens'];
  for (const n of need) if (!h.includes(n)) throw new CegError(`${file}: no column "${n}" (columns: ${h.join(', ')})`);
  const at = (cells: string[], n: string, line: number) => {
    const raw = cells[h.indexOf(n)];
    // one of their runs logged a final loss of nan: kept as NaN, left out of every frontier
    if (n === 'final_val_loss' && raw.trim().toLowerCase() === 'nan') return NaN;
    const v = Number(raw);
    if (!Number.isFinite(v)) throw new CegError(`${file}:${line}: ${n} "${cells[h.indexOf(n)]}" is not a number`);
    return v;
  };
  return rows.slice(1).map(({ line, cells }) => ({
    series: cells[h.indexOf('series')],
    hiddenDim: at(cells, 'hidden_dim', line),
    loss: at(cells, 'final_val_loss', line),
    flops: at(cells, 'train_flops_profiler', line),
    tokens: at(cells, 'train_tokens', line),
  }));
}

/**
 * The lower envelope of (C, L) points: sorted by compute, a point stays only if its loss is
 * below every point with less compute (the frontier of src/ceg/study, for any study's points).
 * Points with a non-finite loss are left out.
 */
export function lowerEnvelope<T extends { flops: number; loss: number }>(points: readonly T[]): T[] {
  const sorted = points.filter((p) => Number.isFinite(p.loss) && p.flops > 0).sort((a, b) => a.flops - b.flops);
  const out: T[] = [];
  for (const p of sorted) if (out.length === 0 || p.loss < out[out.length - 1].loss) out.push(p);
  return out;
}

/**
 * Loss of `points` relative to a reference frontier at equal compute: L / L_ref(C), L_ref
 * interpolated linearly in log C along the reference's lower envelope, only inside its
 * compute range (points outside get null). Below 1: better than the reference at that compute.
 */
export function relativeToReference(
  points: readonly { flops: number; loss: number }[],
  reference: readonly { flops: number; loss: number }[],
): (number | null)[] {
  const ref = lowerEnvelope(reference);
  if (ref.length < 2) throw new CegError('relativeToReference: the reference needs at least 2 frontier points');
  return points.map((p) => {
    if (p.flops < ref[0].flops || p.flops > ref[ref.length - 1].flops) return null;
    let i = 0;
    while (i < ref.length - 2 && ref[i + 1].flops < p.flops) i++;
    const a = ref[i];
    const b = ref[i + 1];
    const t = (Math.log(p.flops) - Math.log(a.flops)) / (Math.log(b.flops) - Math.log(a.flops));
    return p.loss / (a.loss + t * (b.loss - a.loss));
  });
}
