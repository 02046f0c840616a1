/**
 * One call for a study's report: every variant against every baseline (frontier CEG with
 * intervals, the shared-E parametric check, both slopes, the verdicts against the placebo's
 * noise floor), the combination checks, and the run-to-run spread of the final loss.
 * Never throws on data that merely cannot be judged: such a variant gets verdict
 * 'inconclusive' and the reason in `notes` / `parametricError`.
 */
import { CegError } from '../types.js';
import type { StudyPlacebo } from '../../plans.js';
import { frontierCeg, seedsOf } from './frontier.js';
import { parametricCeg } from './parametric.js';
import { lossSpread, noiseFloor, MIN_SLOPE_FLOOR } from './noise.js';
import { slopeVerdict, combineVerdicts } from './verdict.js';
import { combinationVsProduct } from './combination.js';
import type {
  CombinationCheck,
  FrontierCeg,
  LossSpread,
  NoiseFloor,
  ParametricCeg,
  StudyOptions,
  StudyRun,
  VerdictResult,
} from './types.js';

export interface AnalyzeOptions extends StudyOptions {
  /** baseline ids; every CEG is reported against each (e.g. ['baseline', 'baseline-fair']) */
  baselines: string[];
  /** variants to judge (default: every other variant in the runs) */
  variants?: string[];
  /**
   * the placebos (e.g. { placebo: 'fused', of: 'baseline' }), at most one per baseline: each has
   * the same math as the baseline it replicates, `of`, and is measured against it only, where its
   * CEG sets the noise floor. Against another baseline a placebo is a different model, not a
   * placebo; a baseline without a placebo of its own, or whose placebo's slope interval is still
   * unbounded, borrows the widest band another placebo measured (the pipeline's noise, not its
   * own). With placebos (with runs or not yet) but no measured band anywhere, every verdict is
   * inconclusive; without placebos the band is `minFloor`
   */
  placebos?: StudyPlacebo[];
  /**
   * combination checks, e.g. [{ combination: 'fa_rope_ln', parts: ['flash', 'rope', 'layernorm'], baseline: 'baseline' }].
   * `baseline`: the reference the parts change, the only one the check is made against (against another
   * reference each part's CEG also carries the difference between the two references, once per part, so
   * their product counts it as many times as there are parts); absent: every baseline
   */
  combinations?: { combination: string; parts: string[]; baseline?: string }[];
  /** smallest flat band on slopes (default 0.05 per decade) */
  minFloor?: number;
  /** widest slope interval that can give a verdict (default 0.5 per decade) */
  maxWidth?: number;
  /** bootstrap of the parametric check (default 200 resamples, seed 0) */
  bootstrap?: { resamples?: number; seed?: number };
  /** skip the parametric check (faster; verdicts then rest on the frontier slope alone) */
  parametric?: boolean;
}

export interface VariantAnalysis {
  variant: string;
  frontier: FrontierCeg;
  parametric: ParametricCeg | null;
  parametricError: string | null;
  /** verdict from the non-parametric frontier slope */
  frontierVerdict: VerdictResult;
  /** verdict from the shared-E fit's slope (null without a fit) */
  parametricVerdict: VerdictResult | null;
  /** both agree → that verdict; otherwise inconclusive (the frontier verdict alone without a fit) */
  verdict: VerdictResult;
}

export interface BaselineAnalysis {
  baseline: string;
  /** the placebo's noise floor against this baseline (null without a placebo) */
  noise: NoiseFloor | null;
  variants: VariantAnalysis[];
  combinations: CombinationCheck[];
}

export interface StudyAnalysis {
  baselines: BaselineAnalysis[];
  spread: LossSpread[];
  notes: string[];
}

export function analyzeStudy(runs: readonly StudyRun[], opts: AnalyzeOptions): StudyAnalysis {
  if (opts.baselines.length === 0) throw new CegError('analyzeStudy: no baseline given');
  const present = new Set(runs.map((r) => r.variant));
  for (const b of opts.baselines)
    if (!present.has(b)) throw new CegError(`analyzeStudy: no runs of the baseline "${b}"`);
  const placebos = opts.placebos ?? [];
  for (const p of placebos) {
    if (!opts.baselines.includes(p.of))
      throw new CegError(`analyzeStudy: the placebo ${p.placebo}'s baseline "${p.of}" is not among the baselines`);
  }
  for (const b of opts.baselines)
    if (placebos.filter((p) => p.of === b).length > 1)
      throw new CegError(`analyzeStudy: more than one placebo of "${b}"; give each baseline one`);
  const variants = opts.variants ?? [...present].filter((v) => !opts.baselines.includes(v)).sort();
  const notes: string[] = [];
  const out: BaselineAnalysis[] = [];
  // each placebo against the baseline it replicates; a failed measurement is a note, not a floor
  const measured = new Map<string, NoiseFloor>();
  for (const p of placebos) {
    if (!present.has(p.placebo)) {
      notes.push(`vs ${p.of}: the placebo ${p.placebo} has no runs yet: no band measured`);
      continue;
    }
    try {
      const nf = noiseFloor(runs, { ...opts, baseline: p.of, placebo: p.placebo, minFloor: opts.minFloor });
      measured.set(p.of, nf);
      if (!nf.consistent)
        notes.push(
          `vs ${p.of}: the placebo ${p.placebo} is not consistent with CEG 1 (${nf.note}); find out why before reading the verdicts`,
        );
    } catch (e) {
      notes.push(`vs ${p.of}: no noise floor from the placebo ${p.placebo}: ${(e as Error).message}`);
    }
  }
  // a baseline whose placebo has not measured its band borrows the widest band another placebo measured
  const borrowed =
    [...measured.values()].filter((nf) => nf.measured).sort((a, b) => b.slopeFloor - a.slopeFloor)[0] ?? null;
  const placeboIds = new Set(placebos.map((p) => p.placebo));
  for (const baseline of opts.baselines) {
    const own = measured.get(baseline);
    const noise: NoiseFloor | null = own?.measured ? own : (borrowed ?? own ?? null);
    if (own && !own.measured && borrowed)
      notes.push(
        `vs ${baseline}: the placebo ${own.placebo} has not measured its band yet (${own.note}); its verdicts borrow the band measured against ${borrowed.measuredAgainst}`,
      );
    // placebos asked for but none measured a band: nothing to judge a slope by, so no verdict
    // (an infinite band) against any baseline; without placebos the minimum band
    const floor = noise?.measured
      ? noise.slopeFloor
      : placebos.length > 0
        ? Number.POSITIVE_INFINITY
        : (opts.minFloor ?? MIN_SLOPE_FLOOR);
    const vopts = { floor, maxWidth: opts.maxWidth };
    const va: VariantAnalysis[] = [];
    for (const variant of variants) {
      if (variant === baseline) continue;
      // the placebo is a placebo only against the baseline it replicates
      if (placeboIds.has(variant) && !placebos.some((p) => p.placebo === variant && p.of === baseline)) continue;
      if (seedsOf(runs, variant).length === 0) {
        notes.push(`${variant}: no runs`);
        continue;
      }
      const frontier = frontierCeg(runs, { ...opts, baseline, variant });
      const frontierVerdict = frontier.slope
        ? slopeVerdict(frontier.slope.slope, frontier.slope.interval, vopts)
        : {
            verdict: 'inconclusive' as const,
            direction: 'unclear' as const,
            floor,
            reason: 'fewer than 2 frontier points with a CEG inside the baseline range',
          };
      let parametric: ParametricCeg | null = null;
      let parametricError: string | null = null;
      if (opts.parametric !== false) {
        try {
          parametric = parametricCeg(runs, { ...opts, baseline, variant });
        } catch (e) {
          parametricError = (e as Error).message;
        }
      }
      const parametricVerdict = parametric ? slopeVerdict(parametric.slope, parametric.slopeInterval, vopts) : null;
      const verdict = parametricVerdict ? combineVerdicts(frontierVerdict, parametricVerdict) : frontierVerdict;
      va.push({ variant, frontier, parametric, parametricError, frontierVerdict, parametricVerdict, verdict });
    }
    const combinations: CombinationCheck[] = [];
    for (const c of opts.combinations ?? []) {
      if (c.baseline !== undefined && c.baseline !== baseline) continue;
      try {
        combinations.push(combinationVsProduct(runs, { ...opts, baseline, ...c }));
      } catch (e) {
        notes.push(`vs ${baseline}: combination ${c.combination}: ${(e as Error).message}`);
      }
    }
    out.push({ baseline, noise, variants: va, combinations });
  }
  return { baselines: out, spread: lossSpread(runs), notes };
}
