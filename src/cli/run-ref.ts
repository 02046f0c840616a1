/**
 * Run references as text, at the CLI's edge only: "innovation@scale" or "innovation@scale#seed"
 * (e.g. rope@micro#2). Everything below the CLI passes the typed RunRef (src/runs/store.ts).
 */
import { isRunId, type RunRef, type RunStore } from '../runs/index.js';
import { UsageError } from './args.js';

/** "innovation@scale[#seed]" -> RunRef; a UsageError naming the expected form otherwise. */
export function parseRunRef(text: string): RunRef {
  const m = /^([A-Za-z0-9_.-]+)@([A-Za-z0-9_.-]+)(?:#(\d+))?$/.exec(text.trim());
  if (!m) throw new UsageError(`run "${text}": expected a run id or innovation@scale[#seed] (e.g. rope@micro#1)`);
  return { innovation: m[1], scale: m[2], ...(m[3] !== undefined ? { seed: Number(m[3]) } : {}) };
}

/** A RunRef as text (the inverse of parseRunRef). */
export function formatRunRef(ref: RunRef): string {
  return `${ref.innovation}@${ref.scale}${ref.seed !== undefined ? `#${ref.seed}` : ''}`;
}

/**
 * The id of the completed run `text` names: a run id as is, or a reference matching exactly one
 * completed run in the store (a UsageError listing the matches when there are several or none).
 */
export function resolveRunArg(store: RunStore, text: string): string {
  if (isRunId(text)) return text;
  const ref = parseRunRef(text);
  const found = store.list({
    innovation: ref.innovation,
    scale: ref.scale,
    state: 'done',
    ...(ref.seed !== undefined ? { seed: ref.seed } : {}),
  });
  if (found.length === 1) return found[0].id;
  if (found.length === 0)
    throw new UsageError(`no completed run ${formatRunRef(ref)} in ${store.root} (ceg runs lists them)`);
  throw new UsageError(
    `${found.length} completed runs match ${formatRunRef(ref)}: ${found.map((s) => `${s.id} (seed ${s.seed}, ${s.backend})`).join(', ')}; name a seed (#N) or a run id`,
  );
}
