/**
 * Every report figure from plain data: `buildAllFigures(data)` -> named Plotly figures.
 * scripts/figures.ts exports them to figures/*.png and *.svg. The run store and the CEG
 * analysis feed `ReportData` (see loadReportData in scripts/figures.ts).
 */
import {
  attentionPattern,
  blockSparseMask,
  causalMask,
  cegBars,
  cegVsCompute,
  expertLoadHistogram,
  lossCurves,
  paperVsOurs,
  ropeRotation,
  scalingFits,
} from './figures.js';
import type { CegCurve, CegRow, NamedFigure, PaperVsOursRow, RunCurve, ScalingSeries } from './types.js';

export interface ReportData {
  /** scale name shown in titles (e.g. 'micro') */
  scale?: string;
  runs: RunCurve[];
  /** CEG per innovation, one table per compute measure (e.g. { flops: rows, steps: rows }) */
  ceg?: Record<string, CegRow[]>;
  scaling?: ScalingSeries[];
  cegCurves?: CegCurve[];
  paperVsOurs?: PaperVsOursRow[];
  /** tokens per expert from a MoE run, if any */
  expertCounts?: number[];
  /** smoothing window for loss curves (paper: 8) */
  smooth?: number;
}

/** Teaching pictures that need no runs (used by the notebooks too). */
export function teachingFigures(): NamedFigure[] {
  const T = 16;
  const block = 4;
  return [
    { name: 'rope_rotation', figure: ropeRotation({ headDim: 8, positions: 8 }) },
    {
      name: 'attention_patterns',
      figure: attentionPattern([
        { title: 'causal (plain / fused / MQA)', mask: causalMask(T) },
        { title: `block-sparse (block ${block}: own block + selected)`, mask: blockSparseMask(T, block, [[0], [0], [0, 1], [0, 2]]) },
      ]),
    },
  ];
}

export function buildAllFigures(data: ReportData): NamedFigure[] {
  const figs: NamedFigure[] = [];
  const at = data.scale ? ` (${data.scale} scale)` : '';
  if (data.runs.length) {
    for (const axis of ['steps', 'flops', 'seconds'] as const) {
      figs.push({
        name: `loss_vs_${axis}`,
        figure: lossCurves(data.runs, {
          axis,
          smooth: data.smooth,
          title: `Validation loss vs ${axis === 'flops' ? 'compute' : axis === 'seconds' ? 'wall-clock time' : 'steps'}${at}`,
        }),
      });
    }
  }
  for (const [measure, rows] of Object.entries(data.ceg ?? {})) {
    if (rows.length) figs.push({ name: `ceg_bars_${measure}`, figure: cegBars(rows, { measure }) });
  }
  if (data.scaling?.length) figs.push({ name: 'scaling_fits', figure: scalingFits(data.scaling) });
  if (data.cegCurves?.length) figs.push({ name: 'ceg_vs_compute', figure: cegVsCompute(data.cegCurves) });
  if (data.paperVsOurs?.some((r) => r.paperCeg !== null)) {
    figs.push({ name: 'paper_vs_ours', figure: paperVsOurs(data.paperVsOurs, { scale: data.scale }) });
  }
  if (data.expertCounts?.length) figs.push({ name: 'expert_load', figure: expertLoadHistogram(data.expertCounts) });
  figs.push(...teachingFigures());
  return figs;
}
