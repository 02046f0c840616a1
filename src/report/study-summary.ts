/**
 * The study's results as one typed object (issue #13/#15): what `ceg report --study NAME
 * --format json` prints, and flat rows of it for `--format csv|md`. Per comparison (a variant
 * against a reference: both baselines, post-LN -> pre-LN, removals from the modern stack) the
 * CEG at every frontier point with its interval, the slope of log CEG on log C from both
 * methods with intervals and the seeds they rest on, and the verdict; per baseline the
 * placebo's noise floor and the measured-vs-product check of the combinations. The anchors
 * (the paper, Gundlach et al.) ride along with their citations.
 */
import { analyzeStudy, type Interval, type StudyAnalysis, type VariantAnalysis } from '../ceg/study/index.js';
import { GUNDLACH_PAIRS, paperAnchors, type AnchorPair, type PaperAnchor } from '../ceg/anchors.js';
import type { PlanComparison } from '../plans.js';
import type { LrChoice, StudyData } from './study.js';
import type { StudyProvenance } from './study-provenance.js';

/** An interval reduced to what a reader of the JSON needs. */
export interface IntervalSummary {
  lo: number;
  hi: number;
  method: Interval['method'];
  /** seeds per group it rests on */
  nSeeds: Record<string, number>;
  /** fewer than 4 seeds in some group */
  weak: boolean;
}

export interface CegPointSummary {
  rung: string;
  fork: string;
  flops: number;
  /** seed-averaged variant loss */
  loss: number;
  ceg: number | null;
  interval: IntervalSummary | null;
  /** why there is no CEG: 'plateau' | 'above-range' | 'below-range' */
  flag: string | null;
  /** for 'below-range': CEG >= this */
  lowerBound: number | null;
}

export interface SlopeSummary {
  /** change of log10 CEG per decade of compute */
  slope: number;
  interval: IntervalSummary | null;
}

export interface ComparisonSummary {
  variant: string;
  reference: string;
  kind: PlanComparison['kind'];
  /** seeds of the reference and of the variant among the frontier runs */
  seeds: { reference: number; variant: number };
  points: CegPointSummary[];
  /** non-parametric: least squares of log CEG on log C over the frontier points */
  frontierSlope: (SlopeSummary & { nPoints: number; range: [number, number] }) | null;
  /** parametric: shared-E fit, α_v/α_b − 1, bootstrap interval */
  sharedESlope: SlopeSummary | null;
  sharedEError: string | null;
  verdict: VariantAnalysis['verdict']['verdict'];
  direction: VariantAnalysis['verdict']['direction'];
  verdictReason: string;
  /**
   * half-width of the flat band (per decade) the verdict used: the reference's placebo's, borrowed,
   * or the widest measured; null when no placebo has measured a band (then there is no verdict)
   */
  flatBand: number | null;
}

export interface NoiseFloorSummary {
  reference: string;
  placebo: string;
  /** the baseline the placebo was measured against; another reference borrows its floor */
  measuredAgainst: string;
  /** half-width of the flat band for slopes (per decade); null when the placebo has measured none (`measured` false) */
  slopeFloor: number | null;
  log10CegFloor: number | null;
  consistent: boolean;
  note: string;
}

export interface CombinationSummary {
  reference: string;
  combination: string;
  parts: string[];
  points: { flops: number; measured: number; product: number; ratio: number; interval: IntervalSummary | null }[];
}

export interface StudySummary {
  plan: string;
  runsComplete: number;
  runsListed: number;
  unigramEntropy: number;
  /** points with loss above this are plateau points */
  plateauThreshold: number;
  learningRates: LrChoice[];
  noiseFloors: NoiseFloorSummary[];
  comparisons: ComparisonSummary[];
  combinations: CombinationSummary[];
  spread: StudyAnalysis['spread'];
  plateauEscapes: StudyData['escapes'];
  spotChecks: StudyData['spots'];
  anchors: { paper: PaperAnchor[]; gundlach: AnchorPair[] };
  /** code fingerprints, commits, kernels and machines of the completed runs (src/report/study-provenance.ts) */
  provenance: StudyProvenance;
  notes: string[];
}

const iv = (i: Interval | null | undefined): IntervalSummary | null =>
  i ? { lo: i.lo, hi: i.hi, method: i.method, nSeeds: i.nSeeds, weak: i.weak } : null;

function comparisonOf(
  v: VariantAnalysis,
  reference: string,
  kind: PlanComparison['kind'],
  d: StudyData,
): ComparisonSummary {
  const seeds = (id: string) => new Set(d.runs.filter((r) => r.variant === id).map((r) => r.seed)).size;
  const s = v.frontier.slope;
  return {
    variant: v.variant,
    reference,
    kind,
    seeds: { reference: seeds(reference), variant: seeds(v.variant) },
    points: v.frontier.points.map((p) => ({
      rung: p.rung,
      fork: p.fork,
      flops: p.flops,
      loss: p.loss,
      ceg: p.ceg,
      interval: iv(p.interval),
      flag: p.flag,
      lowerBound: p.bound?.value ?? null,
    })),
    frontierSlope: s ? { slope: s.slope, interval: iv(s.interval), nPoints: s.nPoints, range: s.range } : null,
    sharedESlope: v.parametric ? { slope: v.parametric.slope, interval: iv(v.parametric.slopeInterval) } : null,
    sharedEError: v.parametricError,
    verdict: v.verdict.verdict,
    direction: v.verdict.direction,
    verdictReason: v.verdict.reason,
    flatBand: Number.isFinite(v.verdict.floor) ? v.verdict.floor : null,
  };
}

/**
 * The summary of a study: the plan's comparisons (each placebo against its baseline among them). Those
 * against a baseline come from `a` = analyzeStudyData(d); the others (reference pairs, the fair
 * baseline against the paper's) are analysed here, with the widest flat band the placebos
 * measured (no placebo replicates those references).
 */
export function studySummary(d: StudyData, a: StudyAnalysis | null, o: { bootstrap?: number } = {}): StudySummary {
  const comparisons: ComparisonSummary[] = [];
  const noiseFloors: NoiseFloorSummary[] = [];
  const combinations: CombinationSummary[] = [];
  // the plan's comparisons (a placebo's is one of them); other pairs the analysis made are left out
  const kindOf = (variant: string, reference: string): PlanComparison['kind'] | null =>
    d.plan.comparisons.find((c) => c.variant === variant && c.reference === reference)?.kind ?? null;
  for (const b of a?.baselines ?? []) {
    if (b.noise)
      noiseFloors.push({
        reference: b.baseline,
        placebo: b.noise.placebo,
        measuredAgainst: b.noise.measuredAgainst,
        slopeFloor: b.noise.measured ? b.noise.slopeFloor : null,
        log10CegFloor: b.noise.log10CegFloor,
        consistent: b.noise.consistent,
        note: b.noise.note,
      });
    for (const v of b.variants) {
      const kind = kindOf(v.variant, b.baseline);
      if (kind) comparisons.push(comparisonOf(v, b.baseline, kind, d));
    }
    for (const c of b.combinations)
      combinations.push({
        reference: b.baseline,
        combination: c.combination,
        parts: c.parts,
        points: c.points.map((p) => ({
          flops: p.flops,
          measured: p.measured,
          product: p.product,
          ratio: p.ratio,
          interval: iv(p.interval),
        })),
      });
  }
  const present = new Set(d.runs.map((r) => r.variant));
  // no placebo replicates these references: they get the widest measured floor, the most cautious band
  // (with placebos that have measured no band yet: an infinite band, so no verdict)
  const measuredFloors = noiseFloors.flatMap((n) => (n.slopeFloor !== null ? [n.slopeFloor] : []));
  const floor =
    measuredFloors.length > 0
      ? Math.max(...measuredFloors)
      : noiseFloors.length > 0
        ? Number.POSITIVE_INFINITY
        : undefined;
  for (const c of d.plan.comparisons) {
    if (comparisons.some((x) => x.variant === c.variant && x.reference === c.reference)) continue;
    if (!present.has(c.variant) || !present.has(c.reference)) continue;
    const pa = analyzeStudy(d.runs, {
      baselines: [c.reference],
      variants: [c.variant],
      unigramEntropy: d.unigram,
      ...(floor !== undefined ? { minFloor: floor } : {}),
      bootstrap: { resamples: o.bootstrap ?? 200, seed: 0 },
    });
    const v = pa.baselines[0].variants[0];
    if (v) comparisons.push(comparisonOf(v, c.reference, c.kind, d));
  }
  return {
    plan: d.plan.name,
    runsComplete: d.done,
    runsListed: d.planned.length,
    unigramEntropy: d.unigram,
    plateauThreshold: d.unigram - 0.3,
    learningRates: d.lrs.choices,
    noiseFloors,
    comparisons,
    combinations,
    spread: a?.spread ?? [],
    plateauEscapes: d.escapes,
    spotChecks: d.spots,
    anchors: { paper: paperAnchors(), gundlach: [...GUNDLACH_PAIRS] },
    provenance: d.provenance,
    notes: [...d.lrs.notes, ...(a?.notes ?? [])],
  };
}

/** Columns of `studyRows`, in order. */
export const STUDY_ROW_COLUMNS = [
  'kind',
  'variant',
  'reference',
  'rung',
  'fork',
  'flops',
  'loss',
  'ceg',
  'ceg_lo',
  'ceg_hi',
  'flag',
  'lower_bound',
  'seeds_reference',
  'seeds_variant',
  'slope_frontier',
  'slope_frontier_lo',
  'slope_frontier_hi',
  'slope_shared_e',
  'slope_shared_e_lo',
  'slope_shared_e_hi',
  'verdict',
  'noise_floor',
  'placebo_consistent',
  'product',
  'ratio',
  'ratio_lo',
  'ratio_hi',
] as const;

export type StudyRow = Record<(typeof STUDY_ROW_COLUMNS)[number], string | number | boolean | null>;

/**
 * Flat rows for csv/md: one per (comparison, frontier point), with the comparison's slopes,
 * verdict and the reference's noise floor repeated on each; then one row per point of each
 * combination check (kind 'product-check': ceg = measured, product, ratio with its interval).
 */
export function studyRows(s: StudySummary): StudyRow[] {
  const empty = Object.fromEntries(STUDY_ROW_COLUMNS.map((c) => [c, null])) as StudyRow;
  const rows: StudyRow[] = [];
  for (const c of s.comparisons) {
    // the band this comparison's verdict used, and the consistency of the placebo that measured it
    const nf = s.noiseFloors.find((n) => n.reference === c.reference && n.slopeFloor === c.flatBand);
    const base: Partial<StudyRow> = {
      kind: c.kind,
      variant: c.variant,
      reference: c.reference,
      seeds_reference: c.seeds.reference,
      seeds_variant: c.seeds.variant,
      slope_frontier: c.frontierSlope?.slope ?? null,
      slope_frontier_lo: c.frontierSlope?.interval?.lo ?? null,
      slope_frontier_hi: c.frontierSlope?.interval?.hi ?? null,
      slope_shared_e: c.sharedESlope?.slope ?? null,
      slope_shared_e_lo: c.sharedESlope?.interval?.lo ?? null,
      slope_shared_e_hi: c.sharedESlope?.interval?.hi ?? null,
      verdict: c.verdict,
      noise_floor: c.flatBand,
      placebo_consistent: nf?.consistent ?? null,
    };
    const pts = c.points.length ? c.points : [null];
    for (const p of pts)
      rows.push({
        ...empty,
        ...base,
        ...(p
          ? {
              rung: p.rung,
              fork: p.fork,
              flops: p.flops,
              loss: p.loss,
              ceg: p.ceg,
              ceg_lo: p.interval?.lo ?? null,
              ceg_hi: p.interval?.hi ?? null,
              flag: p.flag,
              lower_bound: p.lowerBound,
            }
          : {}),
      });
  }
  for (const c of s.combinations)
    for (const p of c.points)
      rows.push({
        ...empty,
        kind: 'product-check',
        variant: c.combination,
        reference: c.reference,
        flops: p.flops,
        ceg: p.measured,
        product: p.product,
        ratio: p.ratio,
        ratio_lo: p.interval?.lo ?? null,
        ratio_hi: p.interval?.hi ?? null,
        flag: c.parts.join('+'),
      });
  return rows;
}

/** A comparison's points that have a CEG, by ascending compute (the last is the largest-compute CEG the tables quote). */
export function cegPoints(c: ComparisonSummary): CegPointSummary[] {
  return c.points.filter((p) => p.ceg !== null).sort((a, b) => a.flops - b.flops);
}

/** One innovation of the paper beside the study: its published CEGs and label, our CEG against both baselines and our verdict. */
export interface PaperVsStudyRow {
  innovation: string;
  paperCompact: number | null;
  paperFull: number | null;
  paperCategory: string;
  /** per baseline: the frontier CEG at the largest compute with a CEG, its interval, and the verdict */
  ours: {
    reference: string;
    ceg: number | null;
    lo: number | null;
    hi: number | null;
    flops: number | null;
    verdict: string | null;
    slope: number | null;
  }[];
}

export function paperVsStudy(s: StudySummary): PaperVsStudyRow[] {
  const refs = [
    ...new Set(
      s.comparisons
        .filter((c) => c.reference === 'baseline' || c.reference === 'baseline_fair')
        .map((c) => c.reference),
    ),
  ];
  return s.anchors.paper
    .filter((p) => p.innovation !== 'baseline')
    .map((p) => ({
      innovation: p.innovation,
      paperCompact: p.compact,
      paperFull: p.full,
      paperCategory: p.category,
      ours: refs.map((reference) => {
        const c = s.comparisons.find((x) => x.variant === p.innovation && x.reference === reference);
        const top = c ? cegPoints(c).at(-1) : undefined;
        const fin = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : null);
        return {
          reference,
          ceg: top?.ceg ?? null,
          lo: fin(top?.interval?.lo),
          hi: fin(top?.interval?.hi),
          flops: top?.flops ?? null,
          verdict: c?.verdict ?? null,
          slope: c?.frontierSlope?.slope ?? null,
        };
      }),
    }));
}
