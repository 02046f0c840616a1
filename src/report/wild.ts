/**
 * Text and figures for the anchors (notebooks 11 and 12): every sentence is built from computed
 * values (template strings), never typed numbers. The speedrun records as a CEG view
 * (src/ceg/speedrun.ts), and Gundlach et al.'s pairs beside ours (./study-figures.ts).
 */
import { baseLayout, axis } from './figures.js';
import type { Figure } from './types.js';
import type { SpeedrunAnalysis, SpeedrunKind } from '../ceg/speedrun.js';
import type { PairRow } from './study-figures.js';
import type { StudySummary } from './study-summary.js';
import { GUNDLACH_CITATION } from '../ceg/anchors.js';

const x2 = (v: number) => `${v.toFixed(2)}x`;
const pct = (v: number) => `${(100 * v).toFixed(0)}%`;

export const KIND_LABEL: Record<SpeedrunKind, string> = {
  algorithm: 'fewer tokens (algorithm)',
  system: 'same tokens, less time (system)',
  'more-tokens': 'more tokens, less time',
  'unknown-tokens': 'tokens unknown',
  first: 'first record',
  retiming: 're-timing (excluded)',
};
const KIND_COLOR: Record<SpeedrunKind, string> = {
  algorithm: '#0072B2',
  system: '#D55E00',
  'more-tokens': '#CC79A7',
  'unknown-tokens': '#999999',
  first: '#000000',
  retiming: '#DDDDDD',
};

/** What the data hold and what was left out, as sentences. */
export function speedrunCoverage(a: SpeedrunAnalysis): string {
  const s = a.split;
  return [
    `The file holds ${s.rows} rows: ${s.records} records and ${s.retimings} re-timing${s.retimings === 1 ? '' : 's'} of an earlier record (left out of every chain below).`,
    `${s.records - s.unknownTokens} records have their training tokens in their log; ${s.unknownTokens} do not` +
      ` (${s.stepsWithoutTokens} of them give steps but use a batch-size schedule, so steps are not tokens; the other ${s.unknownTokens - s.stepsWithoutTokens} have no usable log).`,
    `A record is compared with the record before it only when both have tokens: ${s.chained.pairs} such consecutive pairs;` +
      ` ${s.byKind['unknown-tokens']} records have no token comparison (their own or the previous record's tokens are unknown) and are labelled "tokens unknown".`,
    `Token counts within ±${(100 * a.tolerance).toFixed(1)}% of each other count as the same.`,
  ].join('\n');
}

/** The split of progress into algorithm (fewer tokens) and system (faster per token). */
export function speedrunSplitText(a: SpeedrunAnalysis): string {
  const s = a.split;
  const c = s.chained;
  const lines = [
    `From the first record to the last, wall-clock time to the target fell ${x2(s.totalTimeGain)}.`,
    `Over the ${c.pairs} consecutive pairs with tokens on both sides: time gain ${x2(c.timeGain)} = token gain ${x2(c.tokenGain)} (algorithm: fewer tokens to the same loss) × per-token speed gain ${x2(c.speedGain)} (system); the algorithm's share of the log time gain is ${pct(c.algorithmShare)}.`,
    `Of those pairs, ${s.byKind.algorithm} needed fewer tokens, ${s.byKind.system} the same tokens in less time, ${s.byKind['more-tokens']} more tokens in less time.`,
  ];
  if (s.lastWithTokens) {
    lines.push(
      `Record 1 to record ${s.lastWithTokens.record} (the last with tokens): ${x2(s.lastWithTokens.tokenGain)} fewer tokens and ${x2(s.lastWithTokens.timeGain)} less time, so ${pct(s.lastWithTokens.algorithmShare)} of the log time gain is the algorithm's.`,
    );
    const rest = s.totalTimeGain / s.lastWithTokens.timeGain;
    if (rest > 1)
      lines.push(
        `The records after record ${s.lastWithTokens.record} cut time a further ${x2(rest)}; their logs give no token counts, so that part cannot be split.`,
      );
  }
  return lines.join('\n');
}

/** Cumulative time and token gain per record (log scale), markers coloured by kind. */
export function speedrunFigure(a: SpeedrunAnalysis): Figure {
  const kept = a.steps.filter((s) => s.kind !== 'retiming');
  const data: Record<string, unknown>[] = [
    {
      type: 'scatter',
      mode: 'lines',
      x: kept.map((s) => s.record),
      y: kept.map((s) => s.cumulativeTimeGain),
      name: 'cumulative time gain (wall-clock)',
      line: { color: '#444444', width: 1.5 },
      hoverinfo: 'skip',
    },
  ];
  const tok = kept.filter((s) => s.cumulativeTokenGain !== null);
  data.push({
    type: 'scatter',
    mode: 'lines+markers',
    x: tok.map((s) => s.record),
    y: tok.map((s) => s.cumulativeTokenGain),
    name: 'cumulative token gain (CEG on tokens)',
    line: { color: '#0072B2', width: 2, dash: 'dash' },
    marker: { color: '#0072B2', size: 6, symbol: 'diamond' },
    text: tok.map((s) => s.description),
    hovertemplate: 'record %{x}: %{text}<br>tokens: %{y:.2f}x fewer than record 1<extra></extra>',
  });
  for (const kind of ['first', 'algorithm', 'system', 'more-tokens', 'unknown-tokens'] as SpeedrunKind[]) {
    const pts = kept.filter((s) => s.kind === kind);
    if (pts.length === 0) continue;
    data.push({
      type: 'scatter',
      mode: 'markers',
      x: pts.map((s) => s.record),
      y: pts.map((s) => s.cumulativeTimeGain),
      name: KIND_LABEL[kind],
      marker: { color: KIND_COLOR[kind], size: 8 },
      text: pts.map((s) => s.description),
      hovertemplate: 'record %{x}: %{text}<br>time gain %{y:.2f}x<extra></extra>',
    });
  }
  return {
    data,
    layout: baseLayout(
      'modded-nanogpt speedrun records as compute-equivalent gains<br><sup>time and tokens to 3.28 FineWeb val loss (8xH100), relative to record 1; colour: against the record before</sup>',
      {
        xaxis: axis('record'),
        yaxis: axis('gain over record 1 (×)', { type: 'log' }),
        legend: { x: 1.02, xanchor: 'left', y: 1, yanchor: 'top' },
      },
    ),
  };
}

/** Gundlach et al.'s pairs beside ours, as sentences (both directions, reference dependence). */
export function pairsText(rows: PairRow[], s: StudySummary): string {
  const out: string[] = [
    `Gundlach et al. (${GUNDLACH_CITATION}) measured these CEGs at about 1.5e15 FLOPs, each variant at its own tuned learning rate.`,
  ];
  const ci = (o: NonNullable<PairRow['add']>) =>
    o.lo !== null && o.hi !== null ? ` [${o.lo.toFixed(2)}, ${o.hi.toFixed(2)}]` : ' (interval unbounded)';
  for (const r of rows) {
    const parts = [`${r.pair}: theirs ${x2(r.gundlach)}`];
    parts.push(
      r.add
        ? `ours added (${r.add.comparison}) ${x2(r.add.ceg)}${ci(r.add)} at ${r.add.at.toExponential(1)} FLOPs`
        : 'ours added: no CEG inside the measured range',
    );
    parts.push(
      r.remove
        ? `ours removed (${r.remove.comparison}) ${x2(r.remove.ceg)}${ci(r.remove)} at ${r.remove.at.toExponential(1)} FLOPs`
        : 'ours removed: no CEG inside the measured range',
    );
    if (r.add && r.remove) {
      const ratio = r.add.ceg / r.remove.ceg;
      parts.push(
        `the two directions differ by ${x2(Math.max(ratio, 1 / ratio))} (${ratio > 1 ? 'added to the older model it is worth more' : 'it is worth more inside the modern stack'})`,
      );
    }
    out.push(`- ${parts.join('; ')}.`);
  }
  const verdicts = s.comparisons.filter((c) =>
    rows.some((r) => [r.add?.comparison, r.remove?.comparison].includes(`${c.variant} vs ${c.reference}`)),
  );
  if (verdicts.length)
    out.push(
      `Verdicts on the slope of log CEG on log C: ${verdicts.map((c) => `${c.variant} vs ${c.reference}: ${c.verdict}`).join('; ')}.`,
    );
  out.push(`Study "${s.plan}": ${s.runsComplete} of ${s.runsListed} listed runs ended (trained or diverged).`);
  return out.join('\n');
}
