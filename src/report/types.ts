/**
 * Plain data the figure builders take: narrow views of the run store's types (src/runs) and
 * shapes src/report/from-runs.ts builds from the CEG analysis (src/ceg); the figures never
 * import those modules' code.
 */
import type { PaperCategory } from '../innovations.js';
import type { MetricRow, RunRecord } from '../runs/index.js';

/** A Plotly figure spec: plain JSON, renderable by Plotly.newPlot(div, data, layout). */
export interface Figure {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
}

export interface NamedFigure {
  /** file stem: figures/<name>.png */
  name: string;
  figure: Figure;
}

/** One evaluation point of a run: the run store's metric row (src/runs MetricRow) with a finite validation loss. */
export type MetricPoint = Pick<MetricRow, 'step' | 'tokens' | 'flops' | 'seconds'> & {
  valLoss: number;
  trainLoss?: number;
  lr?: number;
};

/** One run's loss curve (src/runs RunRecord, narrowed): an innovation at one seed, its evaluation points in step order. */
export type LossCurve = Pick<RunRecord, 'innovation' | 'seed'> & {
  /** display name; defaults to the registry label */
  label?: string;
  points: MetricPoint[];
};

/** One bar of a CEG bar chart (from-runs.ts cegBarRows builds it from a src/ceg CegRow). */
export interface CegBar {
  innovation: string;
  label?: string;
  category: PaperCategory;
  ceg: number;
  ci_low?: number;
  ci_high?: number;
  /** did not reach the baseline's target: `ceg` is then the auxiliary CEG */
  dnr?: boolean;
  verdict?: string;
}

/** Observed (compute, loss) points and a fitted curve for one variant. */
export interface ScalingSeries {
  innovation: string;
  label?: string;
  /** observed points: C in FLOPs, L = validation loss */
  points: { C: number; L: number }[];
  /** the fitted curve sampled on a grid (any functional form) */
  curve: { C: number; L: number }[];
  /** uncertainty of the fit on the same grid: the range of the per-seed fits (absent with one seed) */
  band?: { C: number; lo: number; hi: number }[];
}

/** CEG as a function of compute for one variant. */
export interface CegCurve {
  innovation: string;
  label?: string;
  curve: { C: number; ceg: number }[];
  /** compute range covered by runs; outside it the curve is an extrapolation (dashed) */
  observed: [number, number];
}

export interface PaperVsOursRow {
  innovation: string;
  label?: string;
  /** the paper's CEG (its auxiliary CEG where it reports DNR); null when not in the paper */
  paperCeg: number | null;
  paperDnr?: boolean;
  /** the paper's full-scale CEG (auxiliary where DNR); null/absent when not in the paper */
  paperCegFull?: number | null;
  paperFullDnr?: boolean;
  /** the full-scale number rests on the notebook's |LayerNorm − baseline| adjustment (RoPE, MQA) */
  paperFullAdjusted?: boolean;
  ourCeg: number;
  /** our runs did not reach the baseline's target: ourCeg is our auxiliary CEG */
  ourDnr?: boolean;
  ci_low?: number;
  ci_high?: number;
}

export type LossAxis = 'steps' | 'tokens' | 'flops' | 'seconds';
