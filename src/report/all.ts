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
import type { CegCurve, CegBar, NamedFigure, PaperVsOursRow, LossCurve, ScalingSeries } from './types.js';

export interface ReportData {
  /** scale name shown in titles (e.g. 'micro') */
  scale?: string;
  runs: LossCurve[];
  /** CEG per innovation, one table per compute measure (e.g. { flops: rows, steps: rows }) */
  ceg?: Record<string, CegBar[]>;
  scaling?: ScalingSeries[];
  cegCurves?: CegCurve[];
  paperVsOurs?: PaperVsOursRow[];
  /** tokens per expert from MoE runs, if any: one list, or one named list per run */
  expertCounts?: number[] | { name: string; counts: number[] }[];
  /** what paper-vs-ours' "ours" is measured in (default 'steps', the paper's axis) */
  paperVsOursAxis?: string;
  /** smoothing window for loss curves (paper: 8) */
  smooth?: number;
  /** the one machine and kernel set every run's seconds come from (ceg_bars_seconds says so) */
  secondsTiming?: string;
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
        {
          title: `block-sparse (block ${block}: own block + selected)`,
          mask: blockSparseMask(T, block, [[0], [0], [0, 1], [0, 2]]),
        },
      ]),
    },
  ];
}

/** Compute measures of the CEG bars, as the axis titles name them. */
const MEASURE_NAMES: Record<string, string> = {
  flops: 'FLOPs',
  steps: 'optimizer steps',
  tokens: 'tokens',
  seconds: 'wall-clock seconds',
};

/**
 * Every figure whose data is present, in a fixed order with stable names (file stems):
 * loss_vs_steps, loss_vs_flops, loss_vs_seconds, ceg_bars_<measure> (per key of data.ceg),
 * scaling_fits, ceg_vs_compute, paper_vs_ours, expert_load, rope_rotation, attention_patterns.
 */
export function buildAllFigures(data: ReportData): NamedFigure[] {
  const figs: NamedFigure[] = [];
  const at = data.scale ? ` (${data.scale} scale)` : '';
  if (data.runs.length) {
    for (const axis of ['steps', 'flops', 'seconds'] as const) {
      // imported runs may not carry an axis (NaN): no curve on it
      const key = axis === 'steps' ? 'step' : axis;
      if (!data.runs.every((r) => r.points.every((p) => Number.isFinite(p[key])))) continue;
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
    if (!rows.length) continue;
    const m = MEASURE_NAMES[measure] ?? measure;
    figs.push({
      name: `ceg_bars_${measure}`,
      figure: cegBars(rows, {
        measure: m,
        title:
          `Compute-equivalent gain per innovation, measured in ${m}${at}<br><sup>CEG = baseline ${m} / variant ${m} to reach the baseline's final validation loss; whiskers: 95% bootstrap interval<br>hatched: DNR, the variant never reached it (auxiliary CEG, at the variant's best loss)` +
          (measure === 'seconds' && data.secondsTiming
            ? `<br>timing: each run's own training seconds, all measured on ${data.secondsTiming}`
            : '') +
          '</sup>',
      }),
    });
  }
  if (data.scaling?.length) {
    figs.push({
      name: 'scaling_fits',
      figure: scalingFits(data.scaling, {
        title: `Loss vs compute on the scaling ladder${at}<br><sup>dots: runs (best validation loss, every seed); lines: fitted L(C) = E + A·C^(−α)</sup>`,
      }),
    });
  }
  if (data.cegCurves?.length) {
    figs.push({
      name: 'ceg_vs_compute',
      figure: cegVsCompute(data.cegCurves, {
        title: `CEG as a function of compute${at}<br><sup>from the fitted scaling curves: baseline compute to reach the variant's loss at C, divided by C</sup>`,
      }),
    });
  }
  if (data.paperVsOurs?.some((r) => r.paperCeg !== null)) {
    const axis = data.paperVsOursAxis ?? 'steps';
    figs.push({
      name: 'paper_vs_ours',
      figure: paperVsOurs(data.paperVsOurs, {
        note: `paper: ${data.paperVsOurs.some((r) => r.paperCegFull != null) ? 'compact and full scales' : 'compact scale'}, one seed; ours: ${data.scale ?? '?'} scale, geometric mean over seeds${data.paperVsOurs.some((r) => r.ourDnr) ? '; square: our runs DNR (aux CEG)' : ''}`,
        oursAxis: MEASURE_NAMES[axis] ?? axis,
      }),
    });
  }
  if (data.expertCounts?.length) {
    figs.push({
      name: 'expert_load',
      figure: expertLoadHistogram(data.expertCounts, {
        title: `Mixture of experts: tokens routed to each expert${at}<br><sup>at the last evaluation, summed over layers and validation batches (each token counts once per chosen expert); dashed: balanced load</sup>`,
      }),
    });
  }
  figs.push(...teachingFigures());
  return figs;
}
