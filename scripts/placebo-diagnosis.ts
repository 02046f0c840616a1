/**
 * npx tsx scripts/placebo-diagnosis.ts [--plan cpu] [--placebo fused] [--rung n270k] [--seeds 1]
 *                                      [--runs data/runs] [--out data/diagnostics/placebo] [--jobs 1]
 *
 * Why does a placebo differ from its baseline? A placebo (fused attention) is its baseline's
 * math computed another way, yet its trunk differs from the baseline's in three things: the
 * model (the attention kernel), the learning rate (each variant's own sweep picks its LR, and
 * the two sweeps need not agree to the last digit) and the trunk's length (a baseline trains
 * longer, for its extra fork). This script retrains, per seed, the placebo's trunk with one or
 * two of those swapped for the baseline's, and prints the validation loss of all five trunks
 * (the two stored ones and three crossed ones) at every evaluation step they share:
 *
 *   A  the baseline's model and LR over the placebo's trunk   (vs the baseline: trunk length)
 *   B  the baseline's model at the placebo's LR                (vs A: the LR; vs the placebo: the kernel)
 *   C  the placebo's model at the baseline's LR                (vs A: the kernel; vs the placebo: the LR)
 *
 * A pair that differs only in X and whose curves agree to rounding says X does not move the
 * loss; two pairs that differ in X by as much as seeds differ say X sends training down another
 * path. The crossed runs go to their own store (--out), never the study's; re-running reuses them.
 * See docs/study-analysis.md, "When the placebo is not consistent".
 */
import { ConfigError } from '../src/config.js';
import { getPlan, studyPlacebos, type StudyPlan } from '../src/plans.js';
import { RunStore, runId, type RunSpec } from '../src/runs/index.js';
import { planRuns, type PlannedRun } from '../src/train/study.js';
import { ensureSpecs } from '../src/train/sweep.js';
import { chooseLrs } from '../src/report/study.js';
import { backendFlag, parseScriptArgs, type CommandSpec } from '../src/cli/args.js';
import { describeError } from '../src/cli/errors.js';
import { defaultRunsRoot, projectPath } from '../src/paths.js';
import { alignColumns, evalRows, sampleVariance } from '../src/ceg/index.js';
import { mean } from '../src/ceg/random.js';
import type { BackendName } from '../src/engine/index.js';

const spec = {
  summary:
    "Retrain a placebo's trunk with the baseline's model, LR or both swapped in, and compare the validation curves.",
  flags: {
    plan: { type: 'string', default: 'cpu', help: 'study plan' },
    placebo: { type: 'string', help: "the placebo (default: the plan's first)" },
    rung: { type: 'string', help: "the rung (default: the plan's largest)" },
    seeds: { type: 'list', of: 'int', default: [1], min: 1, help: 'seeds to diagnose' },
    runs: { type: 'string', default: defaultRunsRoot(), help: "the study's run store (read only)" },
    backend: backendFlag({ default: 'wasm', help: 'backend the study was trained on' }),
    out: { type: 'string', default: projectPath('data', 'diagnostics', 'placebo'), help: 'store for the crossed runs' },
    jobs: { type: 'int', default: 1, min: 1, help: 'runs trained at once, each in its own process' },
  },
} as const satisfies CommandSpec;

/** The three crossed trunks of one seed, each the placebo's trunk spec with the baseline's model and/or LR. */
export function crossedSpecs(base: RunSpec, placebo: RunSpec): { A: RunSpec; B: RunSpec; C: RunSpec } {
  const withModel = (lr: number): RunSpec => ({
    ...placebo,
    innovation: base.innovation,
    model: structuredClone(base.model),
    train: { ...placebo.train, lr },
  });
  return {
    A: withModel(base.train.lr),
    B: withModel(placebo.train.lr),
    C: { ...placebo, train: { ...placebo.train, lr: base.train.lr } },
  };
}

/** The plan's frontier trunks at the LRs the study chose (from the store's sweeps). */
function frontierTrunks(plan: StudyPlan, store: RunStore, backend: BackendName): PlannedRun[] {
  const lrs = chooseLrs(plan, store, backend);
  return planRuns(plan, { backend, lrOf: lrs.lrOf, stages: ['frontier'] }).filter((r) => r.role === 'trunk');
}

function trunkOf(trunks: readonly PlannedRun[], store: RunStore, variant: string, rung: string, seed: number): RunSpec {
  const r = trunks.find((p) => p.variant === variant && p.rung === rung && p.seed === seed);
  if (!r) throw new ConfigError(`the plan has no ${variant} trunk at ${rung} seed ${seed} (or no LR for it yet)`);
  if (!store.get(r.id)?.isDone())
    throw new ConfigError(
      `${variant} ${rung} seed ${seed} (run ${r.id}) is not trained in ${store.root}: run the study first`,
    );
  return r.spec;
}

/** A trunk's validation loss by step. */
function valCurve(store: RunStore, id: string): Map<number, number> {
  return new Map(evalRows(store.get(id)!.metrics(), `run ${id}`).map((r) => [r.step, r.valLoss]));
}

const sd = (xs: number[]) => Math.sqrt(sampleVariance(xs));

async function main(): Promise<void> {
  const { flags } = parseScriptArgs('npx tsx scripts/placebo-diagnosis.ts', spec);
  const plan = getPlan(flags.plan);
  const placebos = studyPlacebos(plan);
  const p = flags.placebo === undefined ? placebos[0] : placebos.find((x) => x.placebo === flags.placebo);
  if (!p)
    throw new ConfigError(
      `the plan "${plan.name}" has no placebo ${flags.placebo ?? ''}; its placebos: ${placebos.map((x) => x.placebo).join(', ') || 'none'}`,
    );
  const rung = flags.rung ?? plan.rungs[plan.rungs.length - 1].name;
  if (!plan.rungs.some((r) => r.name === rung))
    throw new ConfigError(
      `the plan "${plan.name}" has no rung ${rung}; its rungs: ${plan.rungs.map((r) => r.name).join(', ')}`,
    );
  const study = new RunStore(flags.runs);
  const out = new RunStore(flags.out);
  const trunks = frontierTrunks(plan, study, flags.backend as BackendName);
  for (const seed of flags.seeds) {
    const base = trunkOf(trunks, study, p.of, rung, seed);
    const plc = trunkOf(trunks, study, p.placebo, rung, seed);
    const x = crossedSpecs(base, plc);
    await ensureSpecs([x.A, x.B, x.C], { store: out, jobs: flags.jobs });
    const curves: [string, Map<number, number>][] = [
      [`${p.of} (stored)`, valCurve(study, runId(base))],
      ['A: its model + LR, short trunk', valCurve(out, runId(x.A))],
      [`B: its model at ${p.placebo}'s LR`, valCurve(out, runId(x.B))],
      [`C: ${p.placebo}'s model at its LR`, valCurve(out, runId(x.C))],
      [`${p.placebo} (stored)`, valCurve(study, runId(plc))],
    ];
    const steps = [...curves[4][1].keys()].filter((s) => s > 0 && curves.every(([, c]) => c.has(s)));
    console.log(
      `\n${p.placebo} vs ${p.of}, ${rung}, seed ${seed}: validation loss at every shared evaluation step ` +
        `(${p.of}: ${base.model.attnKernel} kernel, LR ${base.train.lr}, ${base.train.steps} steps; ` +
        `${p.placebo}: ${plc.model.attnKernel} kernel, LR ${plc.train.lr}, ${plc.train.steps} steps)`,
    );
    console.log(
      alignColumns(
        ['step', ...curves.map(([n]) => n)],
        steps.map((s) => [String(s), ...curves.map(([, c]) => c.get(s)!.toFixed(4))]),
      ),
    );
    const [b, a, bb, c, pl] = curves.map(([, cv]) => cv);
    const maxAbs = (u: Map<number, number>, v: Map<number, number>) =>
      Math.max(...steps.map((s) => Math.abs(u.get(s)! - v.get(s)!)));
    const end = steps[steps.length - 1];
    const pathSd = sd([a, bb, c, pl].map((cv) => cv.get(end)!));
    const pairs: [string, number][] = [
      [`trunk length only (${p.of} vs A)`, maxAbs(b, a)],
      ['kernel only (A vs C)', maxAbs(a, c)],
      [`kernel only (B vs ${p.placebo})`, maxAbs(bb, pl)],
      ['LR only (A vs B)', maxAbs(a, bb)],
      [`LR only (C vs ${p.placebo})`, maxAbs(c, pl)],
    ];
    console.log(
      alignColumns(
        ['pair that differs in one thing', 'largest |difference| of the validation loss'],
        pairs.map(([n, d]) => [n, d.toFixed(4)]),
      ),
    );
    console.log(
      `the four paths of seed ${seed} (A, B, C, ${p.placebo}) at step ${end}: SD ${pathSd.toFixed(4)} of the validation loss`,
    );
  }
  // how far the study's own seeds lie apart at this rung, at the last evaluation step every trunk has
  const done = trunks.filter(
    (r) => r.rung === rung && [p.of, p.placebo].includes(r.variant) && study.get(r.id)?.isDone(),
  );
  const curves = done.map((r) => ({ r, c: valCurve(study, r.id) }));
  const last = Math.max(...[...(curves[0]?.c.keys() ?? [])].filter((s) => curves.every(({ c }) => c.has(s))));
  console.log(
    `\nThe study's seeds at ${rung}, validation loss at step ${last} (the last step all these trunks evaluated):`,
  );
  console.log(
    alignColumns(
      ['variant', 'seeds', 'loss per seed', 'mean', 'SD'],
      [p.of, p.placebo].map((v) => {
        const xs = curves.filter(({ r }) => r.variant === v).map(({ r, c }) => ({ seed: r.seed, loss: c.get(last)! }));
        const losses = xs.map((x) => x.loss);
        return [
          v,
          String(xs.length),
          xs.map((x) => `${x.seed}: ${x.loss.toFixed(4)}`).join(', '),
          mean(losses).toFixed(4),
          sd(losses).toFixed(4),
        ];
      }),
    ),
  );
}

if (process.argv[1] && /placebo-diagnosis\.ts$/.test(process.argv[1]))
  main().catch((e: unknown) => {
    const handled = describeError(e); // bad input: exit 2
    console.error(`placebo-diagnosis: ${handled ? handled.message : e instanceof Error ? e.message : e}`);
    process.exit(handled ? handled.exitCode : 1);
  });
