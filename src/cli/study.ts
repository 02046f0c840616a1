/**
 * `ceg study --plan NAME [--dry-run]`: print a study plan (rungs, parameters, tokens, FLOPs,
 * forks, LR grid, seeds, estimated time on this machine from step times measured per rung),
 * or run it stage by stage through the sweep machinery (src/train/sweep.ts ensureSpecs):
 * rung by rung, each rung's trunks then their forks; the frontier's LRs are chosen from the sweep's results
 * (src/report/study.ts chooseLrs) each time the plan is listed again. Resumable and cached
 * like every run: re-running skips completed runs and resumes interrupted ones.
 */
import os from 'node:os';
import { getInnovation } from '../innovations.js';
import { lrExponentVariants, studyPlacebos, type StudyPlan } from '../plans.js';
import type { RunStore } from '../runs/index.js';
import type { BackendName } from '../engine/index.js';
import { alignColumns } from '../ceg/index.js';
import type { ProgressStream } from '../progress.js';
import { ensureSpecs, type Executor } from '../train/sweep.js';
import { slurmExecutor, SlurmDetached, type SlurmExecutor } from '../train/slurm.js';
import { STUDY_STAGES, planGeometry, planRuns, validatePlan, type LrOf, type PlannedRun } from '../train/study.js';
import { estimateSeconds, measureRungSteps, runCost } from '../train/study-timing.js';
import { chooseLrs, runEnded, trunkDivergedBefore } from '../report/study.js';

const e2 = (v: number) => v.toExponential(2);
const hours = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : `${(s / 60).toFixed(1)} min`);

/**
 * The LRs to list stages 2 and 3 with before the sweep has run (dry run): the chosen LR where
 * the sweep is complete, else the grid's middle value. The run COUNT does not depend on it.
 */
function provisionalLrOf(plan: StudyPlan, chosen: LrOf): LrOf {
  const mid = plan.lrGrid[Math.floor((plan.lrGrid.length - 1) / 2)];
  return (v, r) => chosen(v, r) ?? mid;
}

export interface DryRunOptions {
  store: RunStore;
  backend: BackendName;
  jobs: number;
  /** measure step times (default true); false prints the plan without an estimate (tests) */
  measure?: boolean;
}

export async function formatDryRun(plan: StudyPlan, o: DryRunOptions): Promise<string> {
  validatePlan(plan);
  const out: string[] = [];
  const geo = planGeometry(plan);
  out.push(`Study plan "${plan.name}": ${plan.description}`);
  out.push(
    `Data: ${plan.data.corpus}, ${plan.data.tokenizer} tokenizer, context ${plan.blockSize}. Parameters N are the whole model's ` +
      "(embeddings and tied head included); FLOPs are the whole model's (every matmul, the head included, attention causal; " +
      'forward + backward = 3 x forward), counted for the baseline at each rung. Every variant at a rung trains the same tokens.',
  );
  out.push(
    `Schedule: warmup–stable–decay. One trunk per (variant, rung, LR, seed) at constant LR after a ${(plan.warmupFraction * 100).toFixed(0)}% warmup; ` +
      `cooldown forks leave it and decay linearly to ${plan.minLr} over the last ${(plan.cooldownFraction * 100).toFixed(0)}% of their length, ending at ` +
      `${plan.forks.join(', ')} tokens per parameter${plan.baselineExtraFork ? ` (the baselines also at ${plan.baselineExtraFork} on the top rung, so the top points stay inside their frontier)` : ''}.`,
  );
  const lastFork = plan.forks.length - 1;
  out.push('');
  out.push(
    alignColumns(
      [
        'Rung',
        'Layers',
        'Heads',
        'Width',
        'Params N',
        'Batch',
        'Warmup',
        'Forks: start->end step',
        'Tokens (final fork)',
        'Tokens/N',
        'FLOPs (final fork)',
      ],
      geo.map((g) => {
        const f = g.forks[lastFork];
        return [
          g.rung.name,
          String(g.rung.nLayer),
          String(g.rung.nHead),
          String(g.rung.nEmbd),
          String(g.params),
          `${g.rung.batchSize}x${plan.blockSize}`,
          String(g.warmupSteps),
          [...g.forks, ...(g.extraFork ? [g.extraFork] : [])].map((x) => `${x.start}->${x.end}`).join(', '),
          e2(f.end * g.tokensPerStep),
          ((f.end * g.tokensPerStep) / g.params).toFixed(1),
          e2(f.end * g.flopsPerStep),
        ];
      }),
    ),
  );
  const c0 = geo[0].forks[lastFork].end * geo[0].flopsPerStep;
  const c1 = geo[geo.length - 1].forks[lastFork].end * geo[geo.length - 1].flopsPerStep;
  const lo = geo[0].forks[0].end * geo[0].flopsPerStep;
  out.push(
    `Compute: final forks span ${e2(c0)} -> ${e2(c1)} FLOPs = ${Math.log10(c1 / c0).toFixed(2)} decades ` +
      `(every frontier point: ${e2(lo)} -> ${e2(c1)}, ${Math.log10(c1 / lo).toFixed(2)} decades).`,
  );
  out.push(
    `\nLR grid (peak LR, swept for every variant at ${geo
      .slice(0, plan.lrSweepRungs)
      .map((g) => g.rung.name)
      .join(', ')}, seed 1): ${plan.lrGrid.map(e2).join(', ')}`,
  );
  const fitting = lrExponentVariants(plan);
  const outside = plan.variants.map((v) => v.id).filter((id) => !fitting.includes(id));
  out.push(
    '  LR* per sweep rung: vertex of a parabola in log LR; larger rungs: LR* = c_v·N^e, e shared by all variants (src/ceg/study pooledLrTransfer)' +
      (outside.length ? `, fitted without ${outside.join(', ')} (added later: it takes e with its own level).` : '.'),
  );
  if (plan.spotCheck)
    out.push(
      `  Spot check at ${plan.spotCheck.rung}: ${plan.spotCheck.variants.join(', ')} at LR* x ${plan.spotCheck.factors.map((f) => f.toFixed(3)).join(', ')} (seed 1).`,
    );
  out.push('\nVariants (seeds at every rung):');
  const placeboOf = new Map(studyPlacebos(plan).map((p) => [p.placebo, p.of]));
  const role = (id: string) =>
    id === 'baseline'
      ? "the paper's baseline"
      : id === 'baseline_fair'
        ? 'baseline, fair init'
        : placeboOf.has(id)
          ? `placebo of ${placeboOf.get(id)} (same math)`
          : getInnovation(id).label;
  out.push(
    alignColumns(
      ['Variant', 'Seeds', 'Role'],
      plan.variants.map((v) => [v.id, String(v.seeds), role(v.id)]),
    ),
  );
  out.push(`Comparisons: ${plan.comparisons.map((c) => `${c.variant} vs ${c.reference} (${c.kind})`).join('; ')}`);

  const chosen = chooseLrs(plan, o.store, o.backend);
  const lrOf = provisionalLrOf(plan, chosen.lrOf);
  const byStage = STUDY_STAGES.map((stage) => ({
    stage,
    runs: planRuns(plan, { backend: o.backend, lrOf, stages: [stage] }),
  }));
  // a frontier run that is also a sweep run is trained once: count it under the sweep
  const sweepIds = new Set(byStage[0].runs.map((r) => r.id));
  for (const s of byStage.slice(1)) s.runs = s.runs.filter((r) => !sweepIds.has(r.id));
  const all: PlannedRun[] = byStage.flatMap((s) => s.runs);
  const done = all.filter((r) => runEnded(o.store, r));
  out.push('');
  let times: Awaited<ReturnType<typeof measureRungSteps>> | null = null;
  if (o.measure !== false) times = await measureRungSteps(plan, o.backend);
  const rows = byStage.map(({ stage, runs }) => {
    const cost = runs.reduce(
      (a, r) => {
        const c = runCost(r);
        return { steps: a.steps + c.steps, flops: a.flops + c.flops };
      },
      { steps: 0, flops: 0 },
    );
    const pending = runs.filter((r) => !runEnded(o.store, r));
    return [
      stage,
      String(runs.filter((r) => r.role === 'trunk').length),
      String(runs.filter((r) => r.role === 'fork').length),
      String(cost.steps),
      e2(cost.flops),
      times ? hours(estimateSeconds(plan, runs, times.times, o.jobs)) : '-',
      times ? hours(estimateSeconds(plan, pending, times.times, o.jobs)) : '-',
    ];
  });
  const total = times ? estimateSeconds(plan, all, times.times, o.jobs) : null;
  const left = times
    ? estimateSeconds(
        plan,
        all.filter((r) => !runEnded(o.store, r)),
        times.times,
        o.jobs,
      )
    : null;
  const totalFlops = all.reduce((a, r) => a + runCost(r).flops, 0);
  rows.push([
    'total',
    String(all.filter((r) => r.role === 'trunk').length),
    String(all.filter((r) => r.role === 'fork').length),
    String(all.reduce((a, r) => a + runCost(r).steps, 0)),
    e2(totalFlops),
    total === null ? '-' : hours(total),
    left === null ? '-' : hours(left),
  ]);
  out.push(`Runs (${done.length} of ${all.length} already ended (trained or diverged) in ${o.store.root}):`);
  out.push(
    alignColumns(['Stage', 'Trunks', 'Forks', 'Own steps', 'FLOPs', `Est. time (--jobs ${o.jobs})`, 'Left'], rows),
  );
  if (times) {
    out.push(
      `Estimate: CPU ms per training step measured just now for each rung's baseline on ${o.backend} (one process; ` +
        `wall-clock ms in brackets, 1-min load average ${times.load.toFixed(2)} on ${os.availableParallelism()} cores): ` +
        times.times.map((t) => `${t.rung} ${t.msPerStep.toFixed(1)} (${t.wallMsPerStep.toFixed(1)}) ms`).join(', ') +
        '. ' +
        `Each run's own steps plus evaluations (${plan.evalBatches} batches, a forward ~ 1/3 step) are priced at its rung's step time x the variant's FLOPs ratio, divided by --jobs.`,
    );
  }
  if (chosen.choices.length === 0)
    out.push(
      'LRs for the frontier are not chosen yet (the sweep has not run); stages 2 and 3 are counted at a provisional LR (the count does not depend on it).',
    );
  return out.join('\n');
}

export interface RunStudyOptions {
  store: RunStore;
  backend: BackendName;
  jobs: number;
  signal?: AbortSignal;
  /** progress output (default stderr); null for silence */
  stream?: ProgressStream | null;
  log?: (line: string) => void;
  /** train even where a run would repeat its corpus more than MAX_EPOCHS times (src/train/epochs.ts) */
  allowSmallCorpus?: boolean;
  /** keep completed runs the current code no longer reproduces (src/train/stale.ts) instead of retraining them */
  allowStale?: boolean;
  /**
   * who trains the missing runs (default: this machine, `jobs` processes). SLURM: each stage's
   * trunks as one job array, waited for, then its forks as another (src/train/slurm.ts); with
   * `wait: false`, the current stage's trunks and, behind them (afterok), its forks are
   * submitted and runStudy returns `detached` (a later stage's LRs need this one's results)
   */
  executor?: Executor;
}

/**
 * Train a plan: stage by stage, rung by rung, trunks then forks, each time listing the plan again with the
 * LRs chosen from what the store holds. Returns the runs the plan lists at the end and the
 * notes of the LR choice (e.g. a variant whose sweep failed has no frontier runs).
 */
export async function runStudy(
  plan: StudyPlan,
  o: RunStudyOptions,
): Promise<{ runs: PlannedRun[]; notes: string[]; detached?: string }> {
  validatePlan(plan);
  const log = o.log ?? ((l: string) => process.stderr.write(`[ceg] ${l}\n`));
  let notes: string[] = [];
  for (const stage of STUDY_STAGES) {
    const lrs = chooseLrs(plan, o.store, o.backend);
    notes = lrs.notes;
    const runs = planRuns(plan, { backend: o.backend, lrOf: lrs.lrOf, stages: [stage] });
    const pending = runs.filter((r) => !runEnded(o.store, r));
    log(
      `study ${plan.name}, stage ${stage}: ${runs.length} runs (${runs.length - pending.length} ended: trained or diverged)`,
    );
    if (stage !== 'lr-sweep') {
      const missing = plan.variants.filter((v) => lrs.choices.every((c) => c.variant !== v.id)).map((v) => v.id);
      if (missing.length)
        log(`  no LR chosen yet for ${missing.join(', ')} (their sweep is incomplete): left out of this stage`);
    }
    /** --no-wait: the arrays submitted for this stage (the forks' waits for the trunks') */
    const submitted: { d: SlurmDetached; role: 'trunk' | 'fork' }[] = [];
    // locally, rung by rung (trunks, then their forks), smallest first: an interrupted study leaves
    // whole rungs with every seed, which the analysis can use, rather than trunks without forks.
    // SLURM: one array per role for the whole stage (fewer, larger submissions).
    const groups = isSlurm(o.executor)
      ? [runs]
      : plan.rungs.map((g) => runs.filter((r) => r.rung === g.name)).filter((g) => g.length);
    for (const group of groups)
      for (const role of ['trunk', 'fork'] as const) {
        // a fork whose trunk diverged before the fork's start has no checkpoint to start from: it is
        // not trained, and the LR choice counts it as diverged (src/report/study.ts sweepLoss)
        const unreachable = group.filter(
          (r) => r.role === role && r.spec.fork && trunkDivergedBefore(o.store, r.spec.fork),
        );
        if (unreachable.length)
          log(
            `  ${unreachable.length} fork(s) not trained: their trunk diverged before the fork step (counted as diverged)`,
          );
        const specs = group.filter((r) => r.role === role && !unreachable.includes(r)).map((r) => r.spec);
        if (specs.length === 0) continue;
        // forks submitted without waiting start only once the trunks' array has completed
        const executor =
          submitted.length && isSlurm(o.executor)
            ? slurmExecutor({ ...o.executor.options, afterOk: submitted.flatMap((x) => x.d.jobId.split(',')) })
            : o.executor;
        try {
          await ensureSpecs(specs, {
            store: o.store,
            jobs: o.jobs,
            signal: o.signal,
            stream: o.stream === undefined ? process.stderr : o.stream,
            allowSmallCorpus: o.allowSmallCorpus,
            allowStale: o.allowStale,
            ...(executor ? { executor } : {}),
          });
        } catch (e) {
          if (!(e instanceof SlurmDetached)) throw e;
          submitted.push({ d: e, role });
        }
      }
    if (submitted.length) {
      const left = STUDY_STAGES.slice(STUDY_STAGES.indexOf(stage) + 1);
      const ids = submitted.flatMap((x) => x.d.jobId.split(','));
      const what = (x: (typeof submitted)[number]) =>
        `${x.d.tasks} ${x.role}${x.d.tasks === 1 ? '' : 's'}${x.d.queued ? ' still queued or running from before' : ''}`;
      const detached =
        `study ${plan.name}, stage ${stage}: ${submitted.every((x) => x.d.queued) ? 'nothing submitted, earlier ' : 'submitted '}SLURM job${ids.length > 1 ? 's' : ''} ${ids.join(', ')} ` +
        `(${submitted.map(what).join(', then ')}); ` +
        `follow with: squeue -j ${ids.join(',')}. ` +
        (left.length
          ? `The ${left.join(' and ')} stage${left.length > 1 ? 's' : ''} need${left.length > 1 ? '' : 's'} this stage's results: when the jobs have ended, run the same command again to continue.`
          : 'When the jobs have ended, run the same command again for the report (it submits whatever is still missing).');
      return {
        runs: planRuns(plan, { backend: o.backend, lrOf: chooseLrs(plan, o.store, o.backend).lrOf }),
        notes,
        detached,
      };
    }
  }
  const lrs = chooseLrs(plan, o.store, o.backend);
  return { runs: planRuns(plan, { backend: o.backend, lrOf: lrs.lrOf }), notes: lrs.notes };
}

function isSlurm(e: Executor | undefined): e is SlurmExecutor {
  return e?.name === 'slurm' && 'options' in e;
}
