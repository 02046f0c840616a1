/**
 * The study and the anchors for notebooks (09-12): thin calls over src/report and src/ceg, so
 * notebook cells stay one line each. lab.ts re-exports these (one line).
 */
import { readEnv } from './env.js';
import { getPlan, type StudyPlan } from './plans.js';
import type { RunStore } from './runs/index.js';
import type { BackendName } from './engine/index.js';
import { analyzeStudyData, studyData, type StudyData } from './report/study.js';
import { studySummary, studyRows, paperVsStudy, type StudySummary } from './report/study-summary.js';
import {
  anchorsFrontier,
  gundlachPairRows,
  gundlachPairsFigure,
  lossVsLr,
  studyCegVsCompute,
  studyFrontiers,
  MODERN_GROUP,
  PAPER_GROUP,
  type PairRow,
} from './report/study-figures.js';
import { loadGundlachPoints, loadSpeedrunRecords } from './report/anchors-data.js';
import { analyzeSpeedrun, type SpeedrunAnalysis } from './ceg/speedrun.js';
import { speedrunCoverage, speedrunFigure, speedrunSplitText, pairsText, KIND_LABEL } from './report/wild.js';
import type { StudyAnalysis } from './ceg/study/index.js';
import { runStudy } from './cli/study.js';
import { runningFingerprint } from './report/study-provenance.js';
import * as aq from 'arquero';

/** The study a notebook reads: CEG_STUDY, else 'smoke' at the smoke scale (CI) and 'cpu' otherwise. */
export function studyPlanFor(scale: string): StudyPlan {
  return getPlan(readEnv('CEG_STUDY') ?? (scale === 'smoke' ? 'smoke' : 'cpu'));
}

export interface LoadedStudy {
  data: StudyData;
  analysis: StudyAnalysis | null;
  summary: StudySummary;
}

/**
 * A study's runs from the store, analysed. The smoke plan (a minute or two) is trained first if
 * runs are missing; a larger plan is never trained from a notebook (`ceg study --plan NAME`):
 * what the store holds is analysed, and the summary says how many runs are complete.
 */
export async function loadStudy(
  plan: StudyPlan,
  store: RunStore,
  backend: BackendName,
  o: { bootstrap?: number } = {},
): Promise<LoadedStudy> {
  if (plan.name === 'smoke') await runStudy(plan, { store, backend, jobs: 1, stream: null, log: () => {} });
  const data = studyData(plan, store, backend, { currentFingerprint: await runningFingerprint(backend) });
  const analysis = analyzeStudyData(data, o);
  return { data, analysis, summary: studySummary(data, analysis, o) };
}

/** Gundlach et al.'s pairs and ours, one row each (arquero). */
export function gundlachTable(rows: PairRow[]): aq.ColumnTable {
  const f = (o: PairRow['add']) => (o ? o.ceg : null);
  return aq.from(
    rows.map((r) => ({
      pair: r.pair,
      gundlach: r.gundlach,
      ours_added: f(r.add),
      added_lo: r.add?.lo ?? null,
      added_hi: r.add?.hi ?? null,
      added_as: r.add?.comparison ?? '',
      ours_removed: f(r.remove),
      removed_lo: r.remove?.lo ?? null,
      removed_hi: r.remove?.hi ?? null,
      removed_as: r.remove?.comparison ?? '',
    })),
  );
}

/** The comparisons of a summary as a table: verdict and slopes per (variant, reference). */
export function comparisonTable(s: StudySummary, kinds?: string[]): aq.ColumnTable {
  return aq.from(
    s.comparisons
      .filter((c) => !kinds || kinds.includes(c.kind))
      .map((c) => ({
        variant: c.variant,
        reference: c.reference,
        kind: c.kind,
        seeds: `${c.seeds.reference}+${c.seeds.variant}`,
        ceg_at_top: [...c.points].reverse().find((p) => p.ceg !== null)?.ceg ?? null,
        slope_frontier: c.frontierSlope?.slope ?? null,
        slope_shared_e: c.sharedESlope?.slope ?? null,
        verdict: c.verdict,
      })),
  );
}

/** The paper's CEGs and labels beside the study's CEG (largest compute with a CEG) and verdict, per baseline. */
export function paperVsStudyTable(s: StudySummary): aq.ColumnTable {
  return aq.from(
    paperVsStudy(s).map((r) => ({
      innovation: r.innovation,
      paper_compact: r.paperCompact,
      paper_full: r.paperFull,
      paper_label: r.paperCategory,
      ...Object.fromEntries(
        r.ours.flatMap((o) => [
          [`ceg_vs_${o.reference}`, o.ceg],
          [`lo_vs_${o.reference}`, o.lo],
          [`hi_vs_${o.reference}`, o.hi],
          [`verdict_vs_${o.reference}`, o.verdict],
        ]),
      ),
    })),
  );
}

/** The speedrun records' CEG view: analysis, coverage and split sentences, table, figure. */
export function speedrun(): { analysis: SpeedrunAnalysis; coverage: string; split: string } {
  const analysis = analyzeSpeedrun(loadSpeedrunRecords());
  return { analysis, coverage: speedrunCoverage(analysis), split: speedrunSplitText(analysis) };
}

export function speedrunTable(a: SpeedrunAnalysis): aq.ColumnTable {
  return aq.from(
    a.steps.map((s) => ({
      record: s.record,
      date: s.date,
      minutes: s.minutes,
      tokens: s.trainTokens,
      kind: KIND_LABEL[s.kind],
      token_gain: s.tokenGain,
      speed_gain: s.speedGain,
      time_gain: s.timeGain,
      cum_token_gain: s.cumulativeTokenGain,
      cum_time_gain: s.cumulativeTimeGain,
      description: s.description,
    })),
  );
}

export const studyFig = {
  lossVsLr,
  studyFrontiers,
  studyCegVsCompute,
  gundlachPairsFigure,
  anchorsFrontier,
  speedrunFigure,
};
export { gundlachPairRows, pairsText, studyRows, loadGundlachPoints, PAPER_GROUP, MODERN_GROUP };
export { paperCalls } from './report/study-readme.js';
export { formatStudyProvenance } from './report/study-provenance.js';
