/**
 * `ceg runs --check` and `ceg runs --repair`: every damaged run of the store, with what is
 * wrong with it, and (with --repair) what was done about it. Healthy runs are not touched.
 * The checks and repairs themselves live in src/runs/integrity.ts.
 */
import { checkStore, repairRun, type RunCheck, type RunStore } from '../runs/index.js';

const describe = (c: RunCheck) => `${c.id}  ${c.label}${c.state ? ` (${c.state})` : ''}`;

/** Print the check (and repair) of every run; returns the exit code: 0 healthy or repaired, 1 damage left. */
export function runsCheck(
  store: RunStore,
  repair: boolean,
  out: (line: string) => void = (l) => console.log(l),
): number {
  const checks = checkStore(store);
  const damaged = checks.filter((c) => c.problems.length > 0);
  const unchecked = checks.reduce((n, c) => n + c.uncheckedCheckpoints, 0);
  out(
    `checked ${checks.length} run(s) in ${store.root}: ${checks.length - damaged.length} healthy, ${damaged.length} damaged`,
  );
  for (const c of checks) {
    if (c.problems.length === 0 && c.warnings.length === 0) continue;
    out(describe(c));
    for (const p of c.problems) out(`  damaged: ${p.file}: ${p.message}`);
    for (const w of c.warnings) out(`  note: ${w.file}: ${w.message}`);
    if (repair && c.problems.length) for (const a of repairRun(store, c)) out(`  repaired: ${a}`);
  }
  if (unchecked) out(`(${unchecked} checkpoint(s) were saved before checksums: only their sizes are checked)`);
  if (damaged.length === 0) return 0;
  if (!repair) {
    out(
      `run \`ceg runs --repair${store.root ? ` --runs ${store.root}` : ''}\` to quarantine or reset the damaged runs (healthy runs are not touched)`,
    );
    return 1;
  }
  const left = checkStore(store).filter((c) => c.problems.length > 0);
  for (const c of left)
    out(`still damaged: ${describe(c)}: ${c.problems.map((p) => `${p.file}: ${p.message}`).join('; ')}`);
  return left.length ? 1 : 0;
}

/** One line for commands that read the store (report): how many runs are damaged and left out. */
export function damagedNote(store: RunStore): string | null {
  const n = store.list().filter((s) => s.state === 'corrupt').length;
  return n
    ? `note: ${n} damaged run(s) in ${store.root} are left out; \`ceg runs --check --runs ${store.root}\` says what is wrong`
    : null;
}
