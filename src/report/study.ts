/**
 * A study plan's results from the run store (issue #13): the learning rates it chose (the
 * sweep's best at the sweep rungs, transferred to larger rungs with src/ceg/study's fit), its
 * frontier runs as the analysis's StudyRuns, the analysis itself (frontier CEG, shared-E
 * check, slopes, verdicts against the placebo's noise floor, both baselines), the spot
 * checks, the plateau diagnostic and one printable report. Reads only; trains nothing.
 */
import { getInnovation } from '../innovations.js';
import { lrExponentVariants, studyPlacebos, type StudyPlan } from '../plans.js';
import { ConfigError } from '../config.js';
import type { Divergence, RunStore, MetricRow } from '../runs/index.js';
import { loadTokens } from '../data/index.js';
import { planGeometry, planRuns, type LrOf, type PlannedRun, type RungGeometry } from '../train/study.js';
import type { BackendName } from '../engine/index.js';
import { alignColumns } from '../ceg/index.js';
import { formatStudyProvenance, studyProvenance, type StudyProvenance } from './study-provenance.js';
import {
  analyzeStudy,
  lrOptimum,
  pooledLrTransfer,
  plateauEscape,
  predictLr,
  unigramEntropy,
  type LrSweepPoint,
  type PooledLrTransfer,
  type StudyAnalysis,
  type StudyRun,
  type Interval,
} from '../ceg/study/index.js';

/** The LR of a variant at a rung, and where it came from. */
export interface LrChoice {
  variant: string;
  rung: string;
  params: number;
  lr: number;
  /** 'sweep': best grid LR at a sweep rung (nearest to the parabola's vertex); 'transfer': c_v·N^e with e pooled over variants; 'fallback': no interior LR* at any sweep rung, the largest sweep rung's LR */
  source: 'sweep' | 'transfer' | 'fallback';
  /** LR* from the parabola at a sweep rung (continuous), or the transfer's prediction */
  lrStar: number;
  flag: string | null;
}

export interface LrChoices {
  choices: LrChoice[];
  lrOf: LrOf;
  /** sweep points found (final loss of each swept LR's longest fork) */
  sweep: LrSweepPoint[];
  notes: string[];
  /** the shared transfer exponent (null until every sweep is complete, or without larger rungs) */
  pooled: PooledLrTransfer | null;
}

/**
 * A sweep fork's outcome for the LR choice: its final loss when done; +Infinity when it diverged
 * or can never run because its trunk diverged before the fork's start (that LR is too high: a
 * result, which lrOptimum skips); undefined while it is still to be trained.
 */
function sweepLoss(store: RunStore, r: PlannedRun): number | undefined {
  const run = store.get(r.id);
  if (run?.status().state === 'diverged') return Number.POSITIVE_INFINITY;
  if (r.spec.fork && trunkDivergedBefore(store, r.spec.fork)) return Number.POSITIVE_INFINITY;
  return finalLoss(store, r.id);
}

/** Whether a fork's trunk diverged before the fork's start step (so the fork has no checkpoint to start from). */
export function trunkDivergedBefore(store: RunStore, fork: { parent: string; step: number }): boolean {
  const st = store.get(fork.parent)?.status();
  if (st?.state !== 'diverged') return false;
  // a trunk keeps its fork-step checkpoints as it passes them: only steps it never reached cleanly are lost
  return ((st.divergence as Divergence | undefined)?.step ?? 0) <= fork.step;
}

/** Whether a planned run has ended: trained, diverged, or a fork its diverged trunk never reached (nothing left to train). */
export function runEnded(store: RunStore, r: PlannedRun): boolean {
  const st = store.get(r.id)?.status().state;
  return st === 'done' || st === 'diverged' || (!!r.spec.fork && trunkDivergedBefore(store, r.spec.fork));
}

/** Final validation loss of a completed run, or undefined (not done, no loss). */
function finalLoss(store: RunStore, id: string): number | undefined {
  const r = store.get(id);
  if (!r?.isDone()) return undefined;
  const rows = r.metrics().filter((m) => m.valLoss !== null);
  const v = rows.at(-1)?.valLoss;
  return typeof v === 'number' ? v : undefined;
}

const round3 = (x: number) => Number(x.toPrecision(3));

/**
 * The learning rates a plan uses, from the sweep runs present in the store. At a sweep rung
 * the frontier uses the grid LR nearest (in log) to the parabola's LR* so that the sweep's
 * seed-1 run is reused; larger rungs use LR* = c_v·N^e, e shared by all variants and c_v each
 * variant's own (`pooledLrTransfer`; e fitted over the plan's `lrExponentVariants`), rounded to
 * 3 digits. A variant whose sweep is not complete has no LR yet, and no variant has one at the
 * larger rungs until the sweeps that fit e are complete.
 */
export function chooseLrs(plan: StudyPlan, store: RunStore, backend: BackendName): LrChoices {
  const geo = planGeometry(plan);
  const lastFork = plan.forks[plan.forks.length - 1];
  const sweepRuns = planRuns(plan, { backend, stages: ['lr-sweep'] }).filter(
    (r) => r.role === 'fork' && r.tokensPerParam === lastFork,
  );
  const sweep: LrSweepPoint[] = [];
  const missing = new Set<string>();
  for (const r of sweepRuns) {
    const loss = sweepLoss(store, r);
    const params = geo.find((g) => g.rung.name === r.rung)!.params;
    if (loss === undefined) missing.add(r.variant);
    else sweep.push({ variant: r.variant, rung: r.rung, params, lr: r.lr, loss });
  }
  const choices: LrChoice[] = [];
  const notes: string[] = [];
  for (const v of plan.variants.map((x) => x.id)) {
    if (missing.has(v)) continue;
    const mine = sweep.filter((p) => p.variant === v);
    const atSweep: LrChoice[] = [];
    for (const g of geo.slice(0, plan.lrSweepRungs)) {
      const pts = mine.filter((p) => p.rung === g.rung.name);
      let star: ReturnType<typeof lrOptimum>;
      try {
        star = lrOptimum(pts);
      } catch (e) {
        notes.push(`${v} at ${g.rung.name}: ${(e as Error).message}; its best grid LR is used`);
        const best = pts.filter((p) => Number.isFinite(p.loss)).sort((a, b) => a.loss - b.loss)[0] ?? pts[0];
        star = { lrStar: best.lr, flag: 'edge-low', nLr: pts.length };
      }
      const nearest = [...plan.lrGrid].sort(
        (a, b) => Math.abs(Math.log(a / star.lrStar)) - Math.abs(Math.log(b / star.lrStar)),
      )[0];
      atSweep.push({
        variant: v,
        rung: g.rung.name,
        params: g.params,
        lr: nearest,
        source: 'sweep',
        lrStar: star.lrStar,
        flag: star.flag === 'interior' ? null : star.flag,
      });
    }
    choices.push(...atSweep);
  }
  // larger rungs: one exponent pooled over the plan's exponent variants (pooledLrTransfer), so it
  // waits for their sweeps; a variant outside them takes it once its own sweep is complete
  const larger = geo.slice(plan.lrSweepRungs);
  const ids = plan.variants.map((x) => x.id);
  const exponentFrom = lrExponentVariants(plan);
  const unknown = exponentFrom.filter((v) => !ids.includes(v));
  if (unknown.length)
    throw new ConfigError(`plan ${plan.name}: lrExponentVariants ${unknown.join(', ')} are not among its variants`);
  const waitFor = exponentFrom.filter((v) => missing.has(v));
  let pooled: PooledLrTransfer | null = null;
  if (larger.length && waitFor.length)
    notes.push(
      `larger rungs wait for the LR sweeps of ${waitFor.join(', ')}: the transfer exponent is shared by all variants`,
    );
  else if (larger.length) {
    const ready = ids.filter((v) => !missing.has(v));
    try {
      pooled = pooledLrTransfer(sweep, ready, exponentFrom);
      notes.push(...pooled.notes);
    } catch (e) {
      notes.push(`no LR transfer (${(e as Error).message}); larger rungs use each variant's largest sweep rung's LR`);
    }
  }
  if (!waitFor.length)
    for (const v of ids.filter((x) => !missing.has(x))) {
      const transfer = pooled?.transfers.get(v);
      const last = choices.filter((c) => c.variant === v && c.source === 'sweep').at(-1)!;
      if (!transfer && pooled)
        notes.push(`${v}: no LR* inside the sweep at any rung; larger rungs use its largest sweep rung's LR`);
      for (const g of larger) {
        if (transfer) {
          const p = predictLr(transfer, g.params);
          choices.push({
            variant: v,
            rung: g.rung.name,
            params: g.params,
            lr: round3(p.lr),
            source: 'transfer',
            lrStar: p.lr,
            flag: p.extrapolationDecades > 0 ? `${p.extrapolationDecades.toFixed(2)} decades beyond the fit` : null,
          });
        } else choices.push({ ...last, rung: g.rung.name, params: g.params, source: 'fallback' });
      }
    }
  const lrOf: LrOf = (variant, rung) => choices.find((c) => c.variant === variant && c.rung === rung)?.lr;
  return { choices, lrOf, sweep, notes, pooled };
}

const UNIGRAM_CACHE = new Map<string, number>();

/** Entropy (nats) of the training tokens' unigram distribution: the plateau of a character model. */
export function corpusUnigramEntropy(plan: StudyPlan): number {
  const key = JSON.stringify(plan.data);
  const hit = UNIGRAM_CACHE.get(key);
  if (hit !== undefined) return hit;
  const seq = loadTokens(plan.data).train;
  const counts = new Array<number>(65536).fill(0);
  // window by window: a token file may be too large to hold in memory (TokenSeq)
  for (let at = 0; at < seq.length; at += 1 << 20) {
    const t = seq.subarray(at, Math.min(seq.length, at + (1 << 20)));
    for (let i = 0; i < t.length; i++) counts[t[i]] += 1;
  }
  const h = unigramEntropy(counts);
  UNIGRAM_CACHE.set(key, h);
  return h;
}

export interface StudyData {
  plan: StudyPlan;
  lrs: LrChoices;
  /** every run the plan lists now (more appear as stages complete) */
  planned: PlannedRun[];
  /** ended runs among them: trained, diverged, or forks whose trunk diverged before them */
  done: number;
  /** listed and completed runs per rung, in plan order */
  doneByRung: { rung: string; listed: number; done: number }[];
  /** the frontier runs as the analysis sees them: one per (variant, rung, seed), its completed forks as points */
  runs: StudyRun[];
  unigram: number;
  /** plateau diagnostic: first step below unigram − 0.1, per frontier trunk */
  escapes: { variant: string; rung: string; seed: number; step: number | null; lastStep: number }[];
  /** spot checks: final loss of the longest fork at LR* and at LR* × factor */
  spots: { variant: string; rung: string; lr: number; factor: number; loss: number | undefined }[];
  /** code, kernels and machines of the completed runs, and how they stand against the current code */
  provenance: StudyProvenance;
}

/** Everything the study report needs, read from the store. */
export function studyData(
  plan: StudyPlan,
  store: RunStore,
  backend: BackendName,
  o: { currentFingerprint?: string } = {},
): StudyData {
  const lrs = chooseLrs(plan, store, backend);
  const planned = planRuns(plan, { backend, lrOf: lrs.lrOf });
  const geo = new Map<string, RungGeometry>(planGeometry(plan).map((g) => [g.rung.name, g]));
  let done = 0;
  const byRung = new Map<string, { rung: string; listed: number; done: number }>(
    plan.rungs.map((g) => [g.name, { rung: g.name, listed: 0, done: 0 }]),
  );
  for (const r of planned) {
    const b = byRung.get(r.rung)!;
    b.listed += 1;
    if (runEnded(store, r)) {
      done += 1;
      b.done += 1;
    }
  }
  const unigram = corpusUnigramEntropy(plan);
  const frontier = planRuns(plan, { backend, lrOf: lrs.lrOf, stages: ['frontier'] });
  const runs: StudyRun[] = [];
  const escapes: StudyData['escapes'] = [];
  for (const trunk of frontier.filter((r) => r.role === 'trunk')) {
    const forks = frontier.filter((r) => r.role === 'fork' && r.spec.fork?.parent === trunk.id);
    const points = [];
    for (const f of forks) {
      const run = store.get(f.id);
      if (!run?.isDone()) continue;
      const last = [...run.metrics()]
        .reverse()
        .find((m): m is MetricRow & { valLoss: number } => typeof m.valLoss === 'number');
      if (!last) continue;
      points.push({
        flops: last.flops,
        loss: last.valLoss,
        tokens: last.tokens,
        step: last.step,
        fork: `tpp${f.tokensPerParam}`,
      });
    }
    if (points.length)
      runs.push({
        variant: trunk.variant,
        seed: trunk.seed,
        rung: trunk.rung,
        lr: trunk.lr,
        params: geo.get(trunk.rung)!.params,
        points,
      });
    const t = store.get(trunk.id);
    if (t?.metrics().some((m) => typeof m.valLoss === 'number')) {
      const e = plateauEscape(t.metrics(), unigram);
      escapes.push({ variant: trunk.variant, rung: trunk.rung, seed: trunk.seed, step: e.step, lastStep: e.lastStep });
    }
  }
  const spots: StudyData['spots'] = [];
  const lastFork = plan.forks[plan.forks.length - 1];
  if (plan.spotCheck) {
    for (const v of plan.spotCheck.variants) {
      const lr = lrs.lrOf(v, plan.spotCheck.rung);
      if (lr === undefined) continue;
      for (const factor of [1, ...plan.spotCheck.factors]) {
        const at = factor === 1 ? lr : Number((lr * factor).toPrecision(3));
        const hit = planned.find(
          (r) =>
            r.variant === v &&
            r.rung === plan.spotCheck!.rung &&
            r.seed === 1 &&
            r.lr === at &&
            r.tokensPerParam === lastFork,
        );
        spots.push({
          variant: v,
          rung: plan.spotCheck.rung,
          lr: at,
          factor,
          loss: hit ? finalLoss(store, hit.id) : undefined,
        });
      }
    }
  }
  const provenance = studyProvenance(
    store,
    planned.map((r) => r.id),
    o.currentFingerprint,
  );
  return { plan, lrs, planned, done, doneByRung: [...byRung.values()], runs, unigram, escapes, spots, provenance };
}

/** The analysis of src/ceg/study over a study's frontier runs (both baselines, placebo, FA+RoPE+LN). */
export function analyzeStudyData(d: StudyData, o: { bootstrap?: number } = {}): StudyAnalysis | null {
  const ids = d.plan.variants.map((v) => v.id);
  const present = new Set(d.runs.map((r) => r.variant));
  const baselines = ['baseline', 'baseline_fair'].filter((b) => ids.includes(b) && present.has(b));
  if (baselines.length === 0) return null;
  // combinations of innovations; a placebo or a baseline built from parts (fused_fair) is none
  const placeboIds = new Set(studyPlacebos(d.plan).map((p) => p.placebo));
  const combinations = ids
    .filter(
      (v) =>
        present.has(v) &&
        !placeboIds.has(v) &&
        getInnovation(v).category !== 'baseline' &&
        (getInnovation(v).parts?.length ?? 0) > 1 &&
        getInnovation(v).parts!.every((p) => present.has(p)),
    )
    // the parts are innovations on the paper's baseline: the check is made against it only
    .map((v) => ({ combination: v, parts: getInnovation(v).parts!, baseline: 'baseline' }));
  return analyzeStudy(d.runs, {
    baselines,
    variants: ids.filter((v) => present.has(v) && !baselines.includes(v)),
    // every placebo of the plan, trained yet or not (one without runs has measured no band)
    placebos: studyPlacebos(d.plan).filter((p) => baselines.includes(p.of)),
    combinations,
    unigramEntropy: d.unigram,
    bootstrap: { resamples: o.bootstrap ?? 200, seed: 0 },
  });
}

const f3 = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '-');
const ci = (i: Interval | null | undefined) => (i ? `[${f3(i.lo)}, ${f3(i.hi)}]${i.weak ? '*' : ''}` : '-');
const e2 = (v: number) => v.toExponential(2);

/** The study's report as text: LRs, per-baseline CEG table with slopes and verdicts, noise floor, combinations, spread, plateau, spot checks. */
export function formatStudyReport(d: StudyData, a: StudyAnalysis | null): string {
  const out: string[] = [];
  const p = d.plan;
  out.push(
    `Study "${p.name}": ${d.done}/${d.planned.length} listed runs ended (trained or diverged); unigram entropy of the corpus ${d.unigram.toFixed(3)} nats (plateau rule: points above ${(d.unigram - 0.3).toFixed(3)} are excluded)`,
  );
  out.push(...formatStudyProvenance(d.provenance));
  out.push(
    '\nLearning rates (sweep rungs: best grid LR, LR* from the parabola in log LR; larger rungs: transferred LR* = c_v·N^e, e shared):',
  );
  const pl = d.lrs.pooled;
  if (pl)
    out.push(
      `  shared exponent e = ${pl.exponent.toFixed(3)}${pl.interval ? ` [${pl.interval[0].toFixed(3)}, ${pl.interval[1].toFixed(3)}] (95%)` : ''}, fitted on ${pl.fitted.length} variant(s) with LR* inside the sweep at 2+ rungs (seed 1 each)`,
    );
  out.push(
    alignColumns(
      ['Variant', 'Rung', 'Params', 'LR used', 'LR*', 'Source', 'Note'],
      d.lrs.choices.map((c) => [c.variant, c.rung, String(c.params), e2(c.lr), e2(c.lrStar), c.source, c.flag ?? '']),
    ),
  );
  for (const n of d.lrs.notes) out.push(`  note: ${n}`);
  if (d.lrs.sweep.length) {
    out.push(
      `\nLoss against LR at the sweep rungs (final validation loss of the ${p.forks[p.forks.length - 1]}-tokens-per-parameter fork, seed 1):`,
    );
    const keys = [...new Set(d.lrs.sweep.map((x) => `${x.variant}\u0000${x.rung}`))];
    out.push(
      alignColumns(
        ['Variant', 'Rung', ...p.lrGrid.map(e2)],
        keys.map((k) => {
          const [v, r] = k.split('\u0000');
          return [
            v,
            r,
            ...p.lrGrid.map((lr) => f3(d.lrs.sweep.find((x) => x.variant === v && x.rung === r && x.lr === lr)?.loss)),
          ];
        }),
      ),
    );
  }
  if (!a) {
    out.push('\n(no frontier runs of a baseline yet: run `ceg study --plan ' + p.name + '` to train them)');
    return out.join('\n');
  }
  for (const b of a.baselines) {
    out.push(
      `\nCEG on exact FLOPs at equal loss, against "${b.baseline}" (frontier: C_base(L)/C, interpolated in log C on the seed-averaged ${b.baseline} frontier; * = interval on fewer than 4 seeds):`,
    );
    if (b.noise)
      out.push(
        b.noise.measuredAgainst === b.baseline
          ? `  noise floor from the placebo "${b.noise.placebo}": ${b.noise.measured ? `slope band ±${f3(b.noise.slopeFloor)} per decade` : 'no band measured yet, so no verdict'}; ${b.noise.consistent ? 'consistent with CEG 1' : 'NOT consistent with CEG 1'} (${b.noise.note})`
          : `  noise floor borrowed from the placebo "${b.noise.placebo}" against "${b.noise.measuredAgainst}" (the model it replicates; against "${b.baseline}" it is no placebo, and this baseline's own placebo, if any, has measured no band yet): slope band ±${f3(b.noise.slopeFloor)} per decade`,
      );
    const rungOrder = p.rungs.map((r) => r.name);
    const rows = b.variants.map((v) => {
      const byRung = rungOrder.map((r) => {
        const pts = v.frontier.points.filter((x) => x.rung === r);
        const last = pts.find((x) => x.fork === `tpp${p.forks[p.forks.length - 1]}`) ?? pts.at(-1);
        if (!last) return '-';
        return last.ceg !== null
          ? f3(last.ceg)
          : last.flag === 'below-range' && last.bound
            ? `>=${f3(last.bound.value)}`
            : (last.flag ?? '-');
      });
      return [
        v.variant,
        ...byRung,
        v.frontier.slope ? `${f3(v.frontier.slope.slope)} ${ci(v.frontier.slope.interval)}` : '-',
        v.parametric
          ? `${f3(v.parametric.slope)} ${ci(v.parametric.slopeInterval)}`
          : v.parametricError
            ? 'no fit'
            : '-',
        v.verdict.verdict,
      ];
    });
    out.push(
      alignColumns(
        [
          'Variant',
          ...rungOrder.map((r) => `CEG@${r}`),
          'slope (frontier) [95% CI]',
          'slope (shared-E) [95% CI]',
          'verdict',
        ],
        rows,
      ),
    );
    for (const v of b.variants)
      if (v.verdict.verdict === 'inconclusive') out.push(`  ${v.variant}: inconclusive: ${v.verdict.reason}`);
    for (const c of b.combinations)
      out.push(
        `  ${c.combination} vs the product of ${c.parts.join(' x ')}: ${c.points.map((x) => `${e2(x.flops)} FLOPs: ${f3(x.measured)} vs ${f3(x.product)} (ratio ${f3(x.ratio)} ${ci(x.interval)})`).join('; ') || 'no common points'}`,
      );
  }
  const pairs = formatPairs(d);
  if (pairs) out.push(pairs);
  if (a.spread.length) {
    out.push('\nRun-to-run spread of the final loss (seeds):');
    out.push(
      alignColumns(
        ['Variant', 'Rung', 'Seeds', 'Mean', 'SD'],
        a.spread.filter((s) => s.n > 1).map((s) => [s.variant, s.rung, String(s.n), f3(s.mean), f3(s.sd)]),
      ),
    );
  }
  if (d.escapes.length) {
    out.push(
      `\nPlateau diagnostic: first step with validation loss < unigram − 0.1 (${(d.unigram - 0.1).toFixed(3)}), per trunk (seed 1):`,
    );
    out.push(
      alignColumns(
        ['Variant', 'Rung', 'Step', 'of'],
        d.escapes
          .filter((e) => e.seed === 1)
          .map((e) => [e.variant, e.rung, e.step === null ? 'never' : String(e.step), String(e.lastStep)]),
      ),
    );
  }
  if (d.spots.length) {
    out.push(
      '\nLR spot check (final loss of the longest fork, seed 1): is the transferred LR* the best of LR* × {1/√10, 1, √10}?',
    );
    out.push(
      alignColumns(
        ['Variant', 'Rung', 'LR', 'x', 'Loss'],
        d.spots.map((s) => [s.variant, s.rung, e2(s.lr), f3(s.factor), f3(s.loss)]),
      ),
    );
  }
  for (const n of a.notes) out.push(`note: ${n}`);
  return out.join('\n');
}

/** CEGs of the plan's other reference pairs (removal from the modern stack, post-LN -> pre-LN, RMSNorm vs LayerNorm). */
export function formatPairs(d: StudyData): string {
  const present = new Set(d.runs.map((r) => r.variant));
  const pairs = d.plan.comparisons.filter(
    (c) =>
      c.reference !== 'baseline' &&
      c.reference !== 'baseline_fair' &&
      present.has(c.variant) &&
      present.has(c.reference),
  );
  if (pairs.length === 0) return '';
  const rows: string[][] = [];
  for (const c of pairs) {
    const a = analyzeStudy(d.runs, {
      baselines: [c.reference],
      variants: [c.variant],
      unigramEntropy: d.unigram,
      parametric: false,
    });
    const v = a.baselines[0].variants[0];
    const pts = v?.frontier.points.filter((x) => x.ceg !== null) ?? [];
    rows.push([
      `${c.variant} vs ${c.reference}`,
      c.kind,
      pts.length ? `${f3(Math.min(...pts.map((x) => x.ceg!)))}..${f3(Math.max(...pts.map((x) => x.ceg!)))}` : '-',
      v?.frontier.slope ? `${f3(v.frontier.slope.slope)} ${ci(v.frontier.slope.interval)}` : '-',
      v?.verdict.verdict ?? '-',
    ]);
  }
  return (
    '\nReference pairs (frontier CEG at equal loss; "remove": the modern stack against itself without one part):\n' +
    alignColumns(['Pair', 'Kind', 'CEG range', 'slope [95% CI]', 'verdict'], rows)
  );
}
