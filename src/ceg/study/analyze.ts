/**
 * One call for a study's report: every variant against every baseline (frontier CEG with
 * intervals, the shared-E parametric check, both slopes, the verdicts against the placebo's
 * noise floor), the combination checks, and the run-to-run spread of the final loss.
 * Never throws on data that merely cannot be judged: such a variant gets verdict
 * 'inconclusive' and the reason in `notes` / `parametricError`.
 */
import { CegError } from '../types.js';
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
  /** the placebo variant (e.g. 'flash'): its CEG sets the noise floor */
  placebo?: string;
  /**
   * the baseline the placebo replicates (default: the first baseline). The placebo is measured
   * against it only: against another baseline it is a different model, not a placebo, and that
   * baseline borrows this floor (the pipeline's noise)
   */
  placeboOf?: string;
  /** combination checks, e.g. [{ combination: 'fa_rope_ln', parts: ['flash', 'rope', 'layernorm'] }] */
  combinations?: { combination: string; parts: string[] }[];
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
  if (opts.placebo && !present.has(opts.placebo))
    throw new CegError(`analyzeStudy: no runs of the placebo "${opts.placebo}"`);
  const variants = opts.variants ?? [...present].filter((v) => !opts.baselines.includes(v)).sort();
  const notes: string[] = [];
  const out: BaselineAnalysis[] = [];
  const placeboOf = opts.placeboOf ?? opts.baselines[0];
  if (opts.placebo && !opts.baselines.includes(placeboOf))
    throw new CegError(`analyzeStudy: the placebo's baseline "${placeboOf}" is not among the baselines`);
  let measured: NoiseFloor | null = null;
  if (opts.placebo) {
    try {
      measured = noiseFloor(runs, { ...opts, baseline: placeboOf, placebo: opts.placebo, minFloor: opts.minFloor });
      if (!measured.consistent)
        notes.push(
          `vs ${placeboOf}: the placebo ${opts.placebo} is not consistent with CEG 1 (${measured.note}); find out why before reading the verdicts`,
        );
    } catch (e) {
      notes.push(`vs ${placeboOf}: no noise floor from the placebo: ${(e as Error).message}`);
    }
  }
  for (const baseline of opts.baselines) {
    const noise: NoiseFloor | null = measured;
    const floor = noise?.slopeFloor ?? opts.minFloor ?? MIN_SLOPE_FLOOR;
    const vopts = { floor, maxWidth: opts.maxWidth };
    const va: VariantAnalysis[] = [];
    for (const variant of variants) {
      if (variant === baseline) continue;
      // the placebo is a placebo only against the baseline it replicates
      if (variant === opts.placebo && baseline !== placeboOf) continue;
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
