/**
 * npm run readme [-- --check] [--plan cpu] [--runs data/runs] [--backend wasm]
 * Writes the README's generated sections from the stored runs (src/report/study-readme.ts): the
 * study's Results (between the `results` markers) and the micro reproduction (`micro` markers). --check: write nothing, exit 1 when the README differs
 * from what the runs say (CI runs it, so the README cannot drift from the data).
 */
import fs from 'node:fs';
import { defaultRunsRoot, projectPath } from '../src/paths.js';
import { cachedVerdict, RunStore, writeFileAtomic } from '../src/runs/index.js';
import type { BackendName } from '../src/engine/index.js';
import { getPlan } from '../src/plans.js';
import { analyzeStudyData, studyData } from '../src/report/study.js';
import { studySummary } from '../src/report/study-summary.js';
import { microReadme, spliceReadme, studyReadme } from '../src/report/study-readme.js';
import { storedRecords } from '../src/report/from-runs.js';
import { cegTable } from '../src/ceg/index.js';
import { runningFingerprint } from '../src/report/study-provenance.js';
import { loadSpeedrunRecords } from '../src/report/anchors-data.js';
import { analyzeSpeedrun } from '../src/ceg/speedrun.js';
import { describeError } from '../src/cli/errors.js';
import { readEnv } from '../src/env.js';
import { backendFlag, parseScriptArgs, type CommandSpec } from '../src/cli/args.js';

const spec = {
  summary: "Write the README's Results section from the study's stored runs (--check: only compare).",
  flags: {
    plan: { type: 'string', default: 'cpu', help: 'study plan whose runs the section reports' },
    runs: { type: 'string', default: defaultRunsRoot(), help: 'run store ($CEG_RUNS or data/runs)' },
    backend: backendFlag({
      default: readEnv('CEG_BACKEND') ?? 'wasm',
      help: 'backend the runs were trained on ($CEG_BACKEND or wasm)',
    }),
    readme: { type: 'string', default: projectPath('README.md'), help: 'the README to update' },
    check: { type: 'bool', help: 'write nothing; exit 1 if the README differs from what the runs say' },
  },
} as const satisfies CommandSpec;

async function main(): Promise<number> {
  const { flags: f } = parseScriptArgs('npm run readme --', spec);
  const backend = f.backend as BackendName;
  // no current fingerprint: the section must read the same on every machine (the report says how the runs stand here)
  const d = studyData(getPlan(f.plan), new RunStore(f.runs), backend);
  if (d.done === 0)
    throw new Error(`no completed runs of study "${f.plan}" in ${f.runs}; run: npx ceg study --plan ${f.plan}`);
  const s = studySummary(d, analyzeStudyData(d));
  const section = studyReadme(d, s, analyzeSpeedrun(loadSpeedrunRecords()));
  const before = fs.readFileSync(f.readme, 'utf8');
  let after = spliceReadme(before, 'results', section);
  // the micro reproduction: completed runs, less those a replay under the current code found stale.
  // Cached verdicts only, never a replay: the section must read the same wherever the check runs
  // (on another kernel set nothing is cached, and nothing is left out).
  const store = new RunStore(f.runs);
  const fp = await runningFingerprint(backend);
  const stale = new Map<string, string>();
  for (const r of store.find({ scale: 'micro', backend, state: 'done' })) {
    const v = fp ? cachedVerdict(r, fp) : undefined;
    if (v?.verdict === 'stale') stale.set(r.id, v.detail);
  }
  const notes: string[] = [];
  const micro = storedRecords(store, 'micro', backend, notes, { stale });
  if (micro.some((r) => r.innovation === 'baseline'))
    after = spliceReadme(after, 'micro', microReadme(cegTable(micro, { scale: 'micro' }), micro.length));
  else console.error(`no micro baseline run in ${f.runs}: the micro section is left as it is`);
  for (const n of notes) console.error(`micro: ${n}`);
  if (f.check) {
    if (after === before) {
      console.log(`${f.readme}: the Results section matches the stored runs of "${f.plan}"`);
      return 0;
    }
    const a = before.split('\n');
    const b = after.split('\n');
    const k = a.findIndex((line, i) => line !== b[i]);
    console.error(
      `${f.readme}: the Results section differs from what the stored runs of "${f.plan}" say (first at line ${k + 1}):\n` +
        `  README: ${a[k] ?? '(end)'}\n  runs:   ${b[k] ?? '(end)'}\nRun \`npm run readme\` and commit README.md.`,
    );
    return 1;
  }
  if (after !== before) writeFileAtomic(f.readme, after);
  console.log(
    `${f.readme}: Results section ${after === before ? 'already up to date' : 'written'} from ${d.done} runs of "${f.plan}"`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    const handled = describeError(e);
    console.error(handled ? handled.message : e instanceof Error ? e.message : e);
    process.exit(handled ? handled.exitCode : 1);
  },
);
