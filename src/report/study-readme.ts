/**
 * The README's Results section, written from a study's stored runs (`npm run readme`,
 * scripts/readme.ts): the CEG table against both baselines with the paper's numbers beside it,
 * the placebo's noise floor, the FA+RoPE+LN product check, Gundlach et al.'s ablations and the
 * speedrun records beside ours, and where we agree with the paper, disagree, or cannot decide.
 * Every number and every statement comes from the summary; nothing is typed in.
 */
import { getInnovation } from '../innovations.js';
import { planGeometry } from '../train/study.js';
import type { SpeedrunAnalysis } from '../ceg/speedrun.js';
import { GUNDLACH_CITATION, PAPER_CITATION, paperAnchors } from '../ceg/anchors.js';
import { axisCeg, type CegTable } from '../ceg/index.js';
import { MAX_SLOPE_WIDTH, WEAK_SEEDS } from '../ceg/study/index.js';
import { formatRows } from './formats.js';
import type { StudyData } from './study.js';
import {
  cegPoints,
  paperVsStudy,
  type ComparisonSummary,
  type IntervalSummary,
  type StudySummary,
} from './study-summary.js';
import { gundlachPairRows, type PairRow } from './study-figures.js';
import { speedrunSplitText } from './wild.js';

/** The README's generated sections: `<!-- NAME:begin … -->` … `<!-- NAME:end -->`. */
export type ReadmeSection = 'results' | 'micro';
export const readmeBegin = (name: ReadmeSection) =>
  `<!-- ${name}:begin (written by \`npm run readme\` from the stored runs; do not edit by hand) -->`;
export const readmeEnd = (name: ReadmeSection) => `<!-- ${name}:end -->`;

const f2 = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(2) : '–');
const f3 = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '–');
const e1 = (v: number) => v.toExponential(1);
const iv2 = (i: IntervalSummary | null | undefined) =>
  i ? `[${Number.isFinite(i.lo) ? i.lo.toFixed(2) : '−∞'}, ${Number.isFinite(i.hi) ? i.hi.toFixed(2) : '∞'}]` : '';
const iv3 = (i: IntervalSummary | null | undefined) =>
  i ? `[${Number.isFinite(i.lo) ? i.lo.toFixed(3) : '−∞'}, ${Number.isFinite(i.hi) ? i.hi.toFixed(3) : '∞'}]` : '';
const label = (id: string) => {
  try {
    return getInnovation(id).label;
  } catch {
    return id;
  }
};
const refName = (r: string) => (r === 'baseline' ? "paper's baseline" : r === 'baseline_fair' ? 'fair baseline' : r);

function cegCell(c: ComparisonSummary, at: 'low' | 'high'): string {
  const pts = cegPoints(c);
  const p = at === 'low' ? pts[0] : pts.at(-1);
  if (!p) {
    const lb = c.points.find((x) => x.flag === 'below-range' && x.lowerBound !== null);
    return lb ? `≥ ${f2(lb.lowerBound)}` : '–';
  }
  return `${f2(p.ceg)} ${iv2(p.interval)} at ${e1(p.flops)}`;
}

function slopeCell(c: ComparisonSummary): string {
  const s = c.frontierSlope;
  return s ? `${f3(s.slope)} ${iv3(s.interval)} (${s.nPoints} pts)` : '–';
}

/** Paper's label and our verdict: the same call, the opposite, or no call. */
function agreement(paperCategory: string, verdict: string): 'agree' | 'disagree' | 'undecided' | null {
  if (!/^compute-(in)?dependent/.test(paperCategory)) return null;
  if (verdict === 'inconclusive') return 'undecided';
  const paperDep = paperCategory.startsWith('compute-dependent');
  return (verdict === 'compute-dependent') === paperDep ? 'agree' : 'disagree';
}

/**
 * Where the study agrees with the paper's labels, disagrees, or cannot decide: per innovation the
 * paper labels, our verdict against the paper's baseline (the fair baseline's in brackets).
 */
export function paperCalls(s: StudySummary): { agree: string[]; disagree: string[]; undecided: string[] } {
  const paper = new Map(paperVsStudy(s).map((r) => [r.innovation, r]));
  const calls = { agree: [] as string[], disagree: [] as string[], undecided: [] as string[] };
  for (const c of s.comparisons.filter((x) => x.kind === 'add' && x.reference === 'baseline')) {
    const cat = paper.get(c.variant)?.paperCategory ?? getInnovation(c.variant).category;
    const call = agreement(cat, c.verdict);
    if (!call) continue;
    const fair = s.comparisons.find((x) => x.variant === c.variant && x.reference === 'baseline_fair');
    calls[call].push(
      `${label(c.variant)} (paper: ${cat}; ours: ${c.verdict}${c.direction !== 'flat' && c.direction !== 'unclear' ? `, ${c.direction}` : ''}` +
        `${fair ? `; against the fair baseline: ${fair.verdict}` : ''})`,
    );
  }
  return calls;
}

export function studyReadme(d: StudyData, s: StudySummary, speedrun?: SpeedrunAnalysis): string {
  const out: string[] = [];
  const geo = planGeometry(d.plan);
  const lastFork = d.plan.forks.length - 1;
  const c0 = geo[0].forks[0].end * geo[0].flopsPerStep;
  const c1 = geo.at(-1)!.forks[lastFork].end * geo.at(-1)!.flopsPerStep;
  const seeds = [...new Set(d.plan.variants.map((v) => v.seeds))].sort((a, b) => b - a);
  const seedText = seeds
    .map((n) => `${n} (${d.plan.variants.filter((v) => v.seeds === n).length} variants)`)
    .join(', ');
  const pv = d.provenance;
  out.push(
    `From the **${s.runsComplete} of ${s.runsListed} runs** the \`${s.plan}\` plan lists that have ended (trained, or diverged, which is a result too), in \`data/runs/\` ` +
      `(${geo.length} model sizes, ${geo.map((g) => g.params).join(' / ')} parameters; frontier points span ` +
      `${e1(c0)}–${e1(c1)} training FLOPs, ${Math.log10(c1 / c0).toFixed(1)} decades). Seeds per variant and rung: ${seedText}. ` +
      `Each variant trains at its own tuned learning rate. The intervals are 95% and rest on those seeds; one with fewer than ` +
      `${WEAK_SEEDS} seeds in a group (the seeds column) is weak: treat it that way. Reproduce with \`npm start\`; the full report is \`npx ceg report --study ${s.plan}\`.`,
  );
  if (s.runsComplete < s.runsListed)
    out.push(
      '',
      `**The study is not complete.** ${s.runsListed - s.runsComplete} listed runs are still to train (completed per model size: ` +
        d.doneByRung.map((r) => `${r.rung} ${r.done} of ${r.listed}`).join(', ') +
        '), so the comparisons below lack the sizes that are not complete; `npm start` trains the rest.',
    );
  out.push(
    '',
    `The runs were trained by ${pv.groups.length} code version(s) (fingerprints ${pv.groups.map((g) => `\`${g.fingerprint}\` ${g.runs} runs`).join(', ')}) ` +
      `on ${[...new Set(pv.groups.flatMap((g) => g.machines))].join('; ')}; runs trained by older code were confirmed by replaying their first steps ` +
      `under the newer before they were kept. \`npm start\` and \`npx ceg report --study ${s.plan}\` say how they stand against the code you run.`,
  );

  // ---- the CEG table
  const paper = new Map(paperVsStudy(s).map((r) => [r.innovation, r]));
  const rows = s.comparisons
    .filter((c) => c.kind === 'add' || c.kind === 'placebo')
    .filter((c) => c.reference === 'baseline' || c.reference === 'baseline_fair')
    .map((c) => {
      const p = paper.get(c.variant);
      return {
        innovation: label(c.variant),
        against: refName(c.reference),
        seeds: `${c.seeds.reference}/${c.seeds.variant}`,
        'CEG, smallest compute': cegCell(c, 'low'),
        'CEG, largest compute [95%]': cegCell(c, 'high'),
        'slope: log10 CEG per decade [95%]': slopeCell(c),
        verdict: c.verdict,
        "paper's label":
          p?.paperCategory ?? (c.kind === 'placebo' ? 'not in paper (placebo)' : getInnovation(c.variant).category),
        "paper's CEG (compact / full)": p ? `${f2(p.paperCompact)} / ${f2(p.paperFull)}` : '–',
      };
    });
  out.push(
    '',
    `### CEG on exact FLOPs, and how it moves with compute`,
    `CEG = how much more compute the reference needs to reach the variant's loss, read off the two frontiers at equal loss; ` +
      `points on the unigram plateau (loss above ${f3(s.plateauThreshold)} nats) are left out. The verdict compares the slope of log10 CEG ` +
      `on log10 compute with the noise floor of the reference's placebo. Seeds: reference / variant.`,
    '',
    formatRows(rows, Object.keys(rows[0] ?? { innovation: '' }), 'md').trimEnd(),
  );

  // ---- noise floor
  for (const nf of s.noiseFloors) {
    if (nf.measuredAgainst !== nf.reference) {
      const own = s.comparisons.find((c) => c.kind === 'placebo' && c.reference === nf.reference);
      out.push(
        '',
        `**Against the ${refName(nf.reference)}** ` +
          (own
            ? `its placebo (${label(own.variant)}) has not measured a band yet (too few seeds or points for a bounded slope interval): `
            : `there is no placebo (${label(nf.placebo)} replicates the ${refName(nf.measuredAgainst)}, not this model): `) +
          `its verdicts borrow the slope noise floor measured against the ${refName(nf.measuredAgainst)}, ±${f3(nf.slopeFloor)} per decade.`,
      );
      continue;
    }
    const c = s.comparisons.find((x) => x.variant === nf.placebo && x.reference === nf.reference);
    const top = c ? cegPoints(c).at(-1) : undefined;
    const contains = top?.interval ? top.interval.lo <= 1 && top.interval.hi >= 1 : null;
    out.push(
      '',
      `**Placebo against the ${refName(nf.reference)}** (${label(nf.placebo)}: the same math, so its CEG should be 1): ` +
        (top
          ? `${f3(top.ceg)} ${iv3(top.interval)} at ${e1(top.flops)} FLOPs, ${contains ? 'an interval that contains 1' : '**an interval that does not contain 1**'}; `
          : 'no CEG point; ') +
        `${nf.consistent ? 'consistent with no effect at every point' : '**not consistent with no effect at every point**'}; ` +
        (nf.slopeFloor !== null
          ? `slope noise floor ±${f3(nf.slopeFloor)} per decade`
          : 'too few seeds or points for a bounded slope interval, so the noise band is not measured and its verdicts are inconclusive') +
        `${c ? ` (${c.seeds.reference} baseline and ${c.seeds.variant} placebo seeds)` : ''}.` +
        (nf.slopeFloor !== null && nf.slopeFloor > MAX_SLOPE_WIDTH / 2
          ? ` A band wider than ±${f3(MAX_SLOPE_WIDTH / 2)} cannot show a flat CEG, so no comparison can be called compute-independent until more seeds narrow it; a slope beyond the band would still be compute-dependent.`
          : ''),
    );
  }

  // ---- seed spread of the two baselines: why the paper's baseline is a noisy reference at small sizes
  const spreadOf = (v: string) =>
    s.spread.filter((x) => x.variant === v && x.sd !== null).sort((a, b) => (b.sd ?? 0) - (a.sd ?? 0))[0];
  const sb = spreadOf('baseline');
  const sf = spreadOf('baseline_fair');
  if (sb && sf)
    out.push(
      '',
      `**Seed spread of the references**: the final loss of the ${refName('baseline')} varies by up to SD ${f3(sb.sd)} nats over its ${sb.n} seeds (at ${sb.rung}, mean ${f3(sb.mean)}), ` +
        `the ${refName('baseline_fair')} by up to SD ${f3(sf.sd)} (at ${sf.rung}). ` +
        `A reference whose seeds leave the unigram plateau at different times makes wide CEG intervals and a wide placebo band; \`npx ceg report --study ${s.plan}\` lists the spread of every variant.`,
    );

  // ---- combination
  for (const cb of s.combinations) {
    const top = [...cb.points].sort((x, y) => x.flops - y.flops).at(-1);
    if (!top) continue;
    out.push(
      '',
      `**${label(cb.combination)} against the ${refName(cb.reference)}**, measured vs the product of its parts (${cb.parts.map(label).join(' × ')}) ` +
        `at ${e1(top.flops)} FLOPs: measured ${f2(top.measured)}, product ${f2(top.product)}, ratio ${f2(top.ratio)} ${iv2(top.interval)}` +
        (top.interval
          ? top.interval.lo <= 1 && top.interval.hi >= 1
            ? ' (consistent with multiplying).'
            : top.interval.hi < 1
              ? ' (less than the product).'
              : ' (more than the product).'
          : '.'),
    );
  }

  // ---- agree / disagree / undecided with the paper
  const calls = paperCalls(s);
  out.push('', '### Where we stand with the paper (against its own baseline)');
  out.push(`- **Agree**: ${calls.agree.length ? calls.agree.join('; ') : 'none'}.`);
  out.push(`- **Disagree**: ${calls.disagree.length ? calls.disagree.join('; ') : 'none'}.`);
  out.push(
    `- **Cannot be decided at this scale** (the slope's interval reaches past the noise floor on both sides, or too few points): ${calls.undecided.length ? calls.undecided.join('; ') : 'none'}.`,
  );
  out.push(
    `- The paper (${PAPER_CITATION}) measured at two GPU scales on OpenWebText; ours are character-level models of ${geo[0].params}–${geo.at(-1)!.params} parameters on SOTU, so compare directions and labels, not magnitudes.`,
  );

  // ---- Gundlach et al.
  const pairs = gundlachPairRows(s);
  const ours = (o: PairRow['add']) =>
    o
      ? `${f2(o.ceg)}${o.lo !== null && o.hi !== null ? ` [${f2(o.lo)}, ${f2(o.hi)}]` : ' (interval unbounded)'} (${o.comparison}, at ${e1(o.at)})`
      : 'no CEG inside the measured range';
  const pr = pairs.map((r) => ({
    ablation: r.pair,
    'Gundlach et al.': `${r.gundlach.toFixed(2)}x at 1.5e15`,
    'ours, added to the older model': ours(r.add),
    'ours, removed from the modern stack': ours(r.remove),
  }));
  out.push(
    '',
    '### Beside Gundlach et al. 2025',
    `${GUNDLACH_CITATION}: CEGs at about 1.5e15 FLOPs with per-variant tuned learning rates. Ours at our largest compute with a CEG, both directions (notebook 11; their scaling frontiers beside ours: \`figures/study_${s.plan}_anchors_frontiers.png\`).`,
    '',
    formatRows(pr, Object.keys(pr[0] ?? { ablation: '' }), 'md').trimEnd(),
  );

  // ---- speedrun
  if (speedrun)
    out.push(
      '',
      '### Progress in the wild: the modded-nanogpt speedrun records',
      'Notebook 12 turns the record history into CEGs (tokens to the target loss per record) and splits it into algorithm (fewer tokens) and system (same tokens, less time):',
      '',
      ...speedrunSplitText(speedrun)
        .split('\n')
        .map((l) => `- ${l}`),
    );
  return out.join('\n');
}

/** `readme` with the text between the section's markers replaced by `text`; throws when a marker is missing. */
export function spliceReadme(readme: string, name: ReadmeSection, text: string): string {
  const begin = readmeBegin(name);
  const end = readmeEnd(name);
  const i = readme.indexOf(begin);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README: the markers ${begin} … ${end} are missing or out of order`);
  return `${readme.slice(0, i + begin.length)}\n${text.trim()}\n${readme.slice(j)}`;
}

/**
 * The micro reproduction's table (the paper's variant set at one small size, 3 seeds): our CEG on
 * exact FLOPs with its interval, the paper's method on our runs, and the paper's numbers beside
 * them. The same numbers as `ceg report --scale micro`, which adds wall-clock and the ladder.
 */
export function microReadme(t: CegTable, runs: number): string {
  const paper = new Map(paperAnchors().map((p) => [p.innovation, p]));
  const dnr = (n: number, of: number) => (n ? ` (${n} of ${of} DNR)` : '');
  const rows = t.rows.map((r) => {
    const c = axisCeg(r, 'flops');
    const p = paper.get(r.innovation);
    const pub = (v: number | null | undefined, aux?: number | null) =>
      v === undefined ? '–' : v === null ? (aux ? `DNR (aux ${f2(aux)})` : 'DNR') : f2(v);
    return {
      innovation: r.label,
      "paper's label": r.category,
      "paper's CEG (compact / full)": p ? `${pub(p.compact, p.compactAux)} / ${pub(p.full)}` : '–',
      "paper's method, our runs": r.paper.dnr ? 'DNR' : `${f2(r.paper.ceg)}${dnr(r.paper.nDnr, r.nSeeds)}`,
      'our CEG, exact FLOPs [95%]': c.dnr
        ? `DNR${dnr(c.nDnr, r.nSeeds)}`
        : `${f2(c.ceg)}${c.ciLow !== null && c.ciHigh !== null ? ` [${f2(c.ciLow)}, ${f2(c.ciHigh)}]` : ''}${dnr(c.nDnr, r.nSeeds)}`,
      seeds: r.nSeeds,
      'best val loss': f3(r.bestValLoss),
    };
  });
  return [
    `From the ${runs} stored runs of the \`${t.scale}\` scale in \`data/runs/\` (\`npm run micro\` retrains what is missing; \`npx ceg report --scale ${t.scale}\` adds wall-clock CEGs from side-by-side step times and the ladder verdicts). One model size and a fixed learning rate, so this table reproduces the paper's protocol at a tiny scale; the study above is the one that measures.`,
    '',
    formatRows(rows, Object.keys(rows[0] ?? { innovation: '' }), 'md').trimEnd(),
  ].join('\n');
}
