/**
 * What a variant is, as tables for notebooks: config changes, parameters and FLOPs against the
 * baseline, the ladder's rungs, the registry, K/V cache sizes, stored runs and loss gaps.
 */
import * as aq from 'arquero';
import { requestedBackend } from '../engine/index.js';
import { INNOVATIONS, innovationChange } from '../innovations.js';
import { ladderOf } from '../scales.js';
import type { ModelConfig } from '../config.js';
import { runSpec } from '../train/sweep.js';
import type { RunRecord } from '../runs/index.js';
import { resolveScale } from '../scales.js';
import { paramCount as countOf } from '../model/params.js';
import { stepFlops } from '../model/flops.js';

type Table = ReturnType<typeof aq.from>;

/** The model config of an innovation at a scale (on the requested backend). */
export function modelConfig(scale: string, innovation: string): ModelConfig {
  return runSpec(innovation, scale, 1, requestedBackend()).model;
}

export function paramCount(cfg: ModelConfig): number {
  return countOf(cfg);
}

/**
 * What each variant changes at a scale: the config fields that differ from the baseline,
 * parameters, FLOPs per optimizer step (forward + backward), and both relative to the baseline.
 * A variant with fewer FLOPs per step can lose per step yet win per FLOP, and the reverse.
 */
export function variantTable(scale: string, ids: readonly string[]): Table {
  const s = resolveScale(scale);
  const base = modelConfig(scale, 'baseline');
  const tokens = s.train.batchSize * s.train.gradAccum * base.blockSize;
  const baseFlops = stepFlops(base, tokens).total;
  const baseParams = paramCount(base);
  return aq.from(
    ids.map((id) => {
      const c = modelConfig(scale, id);
      const diff = (Object.keys(c) as (keyof ModelConfig)[])
        .filter((k) => JSON.stringify(c[k]) !== JSON.stringify(base[k]))
        .map((k) => `${k}: ${JSON.stringify(base[k])} → ${JSON.stringify(c[k])}`);
      const flops = stepFlops(c, tokens).total;
      const params = paramCount(c);
      return {
        innovation: id,
        changes: diff.length
          ? diff.join('; ')
          : id === 'baseline'
            ? '—'
            : 'none at this scale (same model as the baseline)',
        params,
        params_vs_baseline: params / baseParams,
        gflop_per_step: flops / 1e9,
        flops_vs_baseline: flops / baseFlops,
      };
    }),
  );
}

/** The scaling ladder of a scale: one row per rung with its size, steps and training FLOPs. */
export function ladderTable(scale: string): Table {
  return aq.from(
    ladderOf(scale).map((r) => {
      const s = resolveScale(r.name);
      const tokens = s.train.batchSize * s.train.gradAccum * s.model.blockSize;
      return {
        rung: r.name,
        layers: r.nLayer,
        heads: r.nHead,
        width: r.nEmbd,
        steps: r.steps,
        params: paramCount(s.model),
        train_pflop: (stepFlops(s.model, tokens).total * r.steps) / 1e15,
      };
    }),
  );
}

export function innovationTable(): Table {
  return aq.from(
    INNOVATIONS.map((i) => ({
      id: i.id,
      label: i.label,
      paper_category: i.category,
      in_paper: i.inPaper,
      change: JSON.stringify(innovationChange(i.id)),
      explanation: i.explanation,
    })),
  );
}

export function runTable(runs: RunRecord[]): Table {
  return aq.from(
    runs.map((r) => {
      const last = r.metrics[r.metrics.length - 1];
      const vals = r.metrics.map((m) => m.valLoss).filter((v): v is number => typeof v === 'number');
      return {
        run: r.id,
        innovation: r.innovation,
        scale: r.scale,
        seed: r.seed,
        steps: last?.step,
        tokens: last?.tokens,
        gflops: last ? last.flops / 1e9 : null,
        seconds: last?.seconds,
        final_val_loss: last?.valLoss,
        best_val_loss: vals.length ? Math.min(...vals) : null,
      };
    }),
  );
}

/**
 * Largest |validation loss of b − validation loss of a| over the evaluations two runs share,
 * per seed: how far apart two variants' curves are step by step (e.g. plain vs fused attention,
 * which compute the same function).
 */
export function lossGap(runs: RunRecord[], a: string, b: string): Table {
  const rows = runs
    .filter((r) => r.innovation === b)
    .map((vb) => {
      const va = runs.find((r) => r.innovation === a && r.seed === vb.seed);
      const at = new Map(
        (va?.metrics ?? []).filter((m) => typeof m.valLoss === 'number').map((m) => [m.step, m.valLoss as number]),
      );
      const gaps = vb.metrics
        .filter((m) => typeof m.valLoss === 'number' && at.has(m.step))
        .map((m) => Math.abs((m.valLoss as number) - (at.get(m.step) as number)));
      return {
        seed: vb.seed,
        evaluations: gaps.length,
        max_abs_gap: gaps.length ? Math.max(...gaps) : null,
        mean_abs_gap: gaps.length ? gaps.reduce((x, y) => x + y, 0) / gaps.length : null,
      };
    });
  return aq.from(rows);
}

/** Where a variant's FLOPs per step go (forward + backward), by part. */
export function flopBreakdown(cfg: ModelConfig, scale: string): Table {
  const s = resolveScale(scale);
  const tokens = s.train.batchSize * s.train.gradAccum * cfg.blockSize;
  const f = stepFlops(cfg, tokens);
  const rows = Object.entries(f.breakdown).map(([part, fwd]) => ({
    part,
    gflop_per_step: (3 * fwd) / 1e9,
    share: fwd / f.forward,
  }));
  return aq.from([...rows, { part: 'total', gflop_per_step: f.total / 1e9, share: 1 }]);
}

/** Bytes of K/V cache per token for MHA, GQA and MQA at a scale (fp32). */
export function kvCacheTable(scale: string): Table {
  return aq.from(
    ['baseline', 'gqa', 'mqa'].map((id) => {
      const c = modelConfig(scale, id);
      const hs = c.nEmbd / c.nHead;
      return {
        innovation: id,
        kv_heads: c.nKvHead,
        query_heads: c.nHead,
        kv_bytes_per_token: 2 * c.nLayer * c.nKvHead * hs * 4,
        params: paramCount(c),
      };
    }),
  );
}
