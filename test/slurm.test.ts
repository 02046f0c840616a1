/**
 * The SLURM executor (issue 16) against a real single-node cluster (scripts/slurm.sh start).
 * Without one these tests skip and say why, except in CI (CI=true), where they fail.
 * The job script itself is checked without a cluster.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { jobScript, shellQuote, SLURM_DIR, writeJob } from '../src/train/slurm.js';
import { runSpec, type SweepOptions } from '../src/train/sweep.js';
import { RunStore, runId } from '../src/runs/index.js';
import { PROJECT_ROOT } from '../src/paths.js';
import { getPlan } from '../src/plans.js';
import { planRuns, type StudyStage } from '../src/train/study.js';
import { chooseLrs } from '../src/report/study.js';

function clusterUp(): string | undefined {
  const r = spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8', timeout: 10_000 });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
    return 'no SLURM client tools (sinfo not on PATH); install and start the local cluster with: bash scripts/slurm.sh start';
  if (r.error)
    return `no SLURM cluster answers (sinfo: ${r.error.message}); start one with: bash scripts/slurm.sh start`;
  if (r.status !== 0 || !/idle|mixed|alloc/.test(r.stdout))
    return `no SLURM cluster answers (sinfo: ${(r.stderr || r.stdout).trim()}); start one with: bash scripts/slurm.sh start`;
  return undefined;
}
/** CEG_CLUSTER_TESTS=skip: .ci/run runs the cluster tests once, on the machine's Node, not again on Node 22/24 */
const skipped =
  process.env.CEG_CLUSTER_TESTS === 'skip'
    ? "CEG_CLUSTER_TESTS=skip (the cluster tests run once per CI, on the machine's Node)"
    : undefined;
const absent = skipped ? undefined : clusterUp();
const inCI = process.env.CI === 'true';
/** skip with the reason on a developer's machine; in CI the cluster must be there */
const needsCluster = skipped ? { skip: skipped } : absent && !inCI ? { skip: absent } : {};
const assertCluster = () => assert.equal(absent, undefined, `CI=true but ${absent}`);

function ceg(args: string[], timeoutMs = 300_000) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, CEG_PROGRESS: 'plain' },
  });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-slurm-${name}-`));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** State of each task of an array still known to squeue. */
function squeue(jobId: string): string[] {
  const r = spawnSync('squeue', ['-h', '-r', '-j', jobId, '-o', '%T'], { encoding: 'utf8' });
  return r.status === 0
    ? r.stdout
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}
async function waitGone(jobId: string, onPoll?: (states: string[]) => void): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const s = squeue(jobId);
    onPoll?.(s);
    if (!s.length) return;
    await sleep(250);
  }
  throw new Error(`job ${jobId} did not end`);
}
function jobIdOf(out: string): string {
  const m = /submitted SLURM job (?:array )?(\d+)/.exec(out);
  assert.ok(m, `no job id in: ${out}`);
  return m[1];
}
/** The (step, loss, valLoss) rows of a stored run: timing columns differ between machines. */
function curve(root: string, id: string): string {
  return fs
    .readFileSync(path.join(root, id, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const r = JSON.parse(l);
      return JSON.stringify([r.step, r.trainLoss ?? r.loss, r.valLoss]);
    })
    .join('\n');
}
function storedRuns(root: string): string[] {
  return fs
    .readdirSync(root)
    .filter((d) => /^[0-9a-f]{16}$/.test(d))
    .sort();
}
/**
 * A report with its wall-clock columns masked (header names "seconds"): training time differs
 * between any two executions; every loss, step, token and FLOP column must agree.
 */
function maskWallClock(report: string): string {
  const lines = report.split('\n');
  let mask: Array<[number, number]> = [];
  return lines
    .map((l, i) => {
      if (!l.trim()) mask = [];
      if (/^-+( +-+)+$/.test(l.trim()) && i > 0) {
        mask = [];
        for (const m of l.matchAll(/-+/g))
          if (/seconds|wall/i.test(lines[i - 1].slice(m.index!, m.index! + m[0].length)))
            mask.push([m.index!, m.index! + m[0].length]);
      }
      let out = l;
      for (const [a, b] of mask)
        out = out.slice(0, a) + ' '.repeat(Math.max(0, Math.min(b, out.length) - a)) + out.slice(b);
      return out;
    })
    .join('\n');
}

/** Final-state records of the array's tasks: sacct (accounting) or sacct --completion (jobcomp/filetxt). */
function sacctStates(jobId: string, jobName: string): string[] {
  const acct = spawnSync('sacct', ['-X', '-n', '-P', '-j', jobId, '--format=JobID,State'], { encoding: 'utf8' });
  if (acct.status === 0 && acct.stdout.trim())
    return acct.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('|')[1]);
  const comp = execFileSync('sacct', ['-c', '-n', '-P', '-S', '2000-01-01', '--format=JobName,State'], {
    encoding: 'utf8',
  });
  return comp
    .split('\n')
    .map((l) => l.split('|'))
    .filter(([name]) => name === jobName)
    .map(([, state]) => state);
}

test('the job script: one task per missing run, each running ceg train with the sweep flags; pass-through flags as #SBATCH lines', () => {
  const store = new RunStore(tmp('script'));
  const specs = [runSpec('baseline', 'smoke', 1, 'wasm'), runSpec('rope', 'smoke', 2, 'wasm')];
  const o: SweepOptions = {
    scale: 'smoke',
    innovations: ['baseline', 'rope'],
    seeds: [1, 2],
    backend: 'wasm',
    store,
    allowSmallCorpus: true,
  };
  const dir = path.join(store.root, SLURM_DIR, 'x');
  const s = jobScript(
    specs,
    o,
    {
      partition: 'gpu',
      account: 'lab',
      time: '2:00:00',
      cpusPerTask: 4,
      gpusPerTask: 1,
      throttle: 3,
      sbatchLines: ['--qos=high', '#SBATCH --constraint=a100', 'mem=4G'],
      setupLines: ['module load nodejs'],
      signalLeadSeconds: 300,
    },
    dir,
    '/x/over rides.json',
  );
  const lines = s.split('\n');
  for (const want of [
    '#SBATCH --array=0-1%3',
    '#SBATCH --partition=gpu',
    '#SBATCH --account=lab',
    '#SBATCH --time=2:00:00',
    '#SBATCH --cpus-per-task=4',
    '#SBATCH --gpus-per-task=1',
    '#SBATCH --signal=B:USR1@300',
    '#SBATCH --requeue',
    '#SBATCH --qos=high',
    '#SBATCH --constraint=a100',
    '#SBATCH --mem=4G',
    'module load nodejs',
    `#SBATCH --output=${path.join(dir, 'logs', '%A_%a.out')}`,
  ])
    assert.ok(lines.includes(want), `missing line ${want}\n${s}`);
  // task i: exactly spec i's ceg train arguments (parsed back by bash)
  for (const [i, sp] of specs.entries()) {
    const caseLine = lines.find((l) => l.startsWith(`  ${i}) args=(`))!;
    assert.ok(caseLine.includes(`# run ${runId(sp)}`));
    const argv = execFileSync(
      'bash',
      ['-c', `${caseLine.replace(/^\s*\d+\) /, '').replace(/ ;;.*$/, '')}; printf '%s\\n' "\${args[@]}"`],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n');
    assert.deepEqual(argv, [
      '--innovation',
      sp.innovation,
      '--scale',
      'smoke',
      '--seed',
      String(sp.seed),
      '--backend',
      'wasm',
      '--runs',
      path.resolve(store.root),
      '--config',
      '/x/over rides.json',
      '--allow-small-corpus',
    ]);
  }
  assert.equal(execFileSync('bash', ['-c', `printf '%s' ${shellQuote("it's a b")}`], { encoding: 'utf8' }), "it's a b");
  // only what is asked for: no throttle, GPUs, partition lines by default
  const plain = jobScript(specs, o, {}, dir);
  assert.ok(plain.includes('#SBATCH --array=0-1\n') && !/--gpus|--partition|--account|--time/.test(plain));
});

test("a study's job script: each task trains its spec file (ceg train --run ID --spec FILE); forks wait for their trunks (afterok)", () => {
  const store = new RunStore(tmp('study-script'));
  const plan = getPlan('smoke');
  const runs = planRuns(plan, { backend: 'wasm', stages: ['lr-sweep'] }).slice(0, 3);
  assert.deepEqual(
    runs.map((r) => r.role),
    ['trunk', 'fork', 'fork'],
  );
  const specs = runs.map((r) => r.spec);
  const o: SweepOptions = { scale: '', innovations: [], seeds: [], backend: 'wasm', store };
  const { dir, script } = writeJob(specs, o, { afterOk: ['41', '42'], throttle: 2 }, 'spec-file');
  const text = fs.readFileSync(script, 'utf8');
  const lines = text.split('\n');
  assert.ok(
    lines.includes('#SBATCH --dependency=afterok:41:42') && lines.includes('#SBATCH --kill-on-invalid-dep=yes'),
    text,
  );
  for (const [i, sp] of specs.entries()) {
    const caseLine = lines.find((l) => l.startsWith(`  ${i}) args=(`))!;
    const argv = execFileSync(
      'bash',
      ['-c', `${caseLine.replace(/^\s*\d+\) /, '').replace(/ ;;.*$/, '')}; printf '%s\\n' "\${args[@]}"`],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n');
    const file = path.join(dir, 'specs', `${runId(sp)}.json`);
    assert.deepEqual(argv, ['--run', runId(sp), '--spec', file, '--runs', path.resolve(store.root)]);
    // the spec file is the spec, and hashes to the run id the task names
    const stored = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(stored, JSON.parse(JSON.stringify(sp)));
    assert.equal(runId(stored), runId(sp));
  }
  assert.equal(specs[1].fork?.parent, runId(specs[0]));
  // without afterOk: no dependency line
  assert.doesNotMatch(jobScript(specs, o, {}, dir, undefined, 'spec-file'), /dependency/);
});

test('a bad executor flag is one message, exit 2, nothing written', () => {
  const root = tmp('flags');
  const r = ceg(['sweep', '--scale', 'smoke', '--innovations', 'baseline', '--partition', 'gpu', '--runs', root]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /--partition: only with --executor slurm/);
  const r2 = ceg(['sweep', '--scale', 'smoke', '--executor', 'pbs', '--runs', root]);
  assert.equal(r2.code, 2);
  assert.match(r2.err, /local, slurm|slurm/);
  assert.deepEqual(fs.readdirSync(root), []);
});

test(
  'smoke sweep through SLURM: tasks COMPLETED, the same stored results and report as the local executor; a re-run submits nothing',
  needsCluster,
  () => {
    assertCluster();
    const viaSlurm = tmp('sweep-slurm');
    const local = tmp('sweep-local');
    const name = `ceg-test-${process.pid}`;
    const s = ceg(
      [
        'sweep',
        '--scale',
        'smoke',
        '--seeds',
        '2',
        '--executor',
        'slurm',
        '--sbatch',
        `job-name=${name}`,
        '--runs',
        viaSlurm,
      ],
      900_000,
    );
    assert.equal(s.code, 0, s.err);
    const jobId = jobIdOf(s.err);
    assert.match(s.err, /14\/14 done, 0 running, 0 pending, 0 failed/);
    const states = sacctStates(jobId, name);
    assert.equal(states.length, 14, `sacct records: ${states}`);
    assert.ok(
      states.every((x) => x === 'COMPLETED'),
      `sacct: ${states}`,
    );
    const l = ceg(['sweep', '--scale', 'smoke', '--seeds', '2', '--runs', local], 900_000);
    assert.equal(l.code, 0, l.err);
    assert.deepEqual(storedRuns(viaSlurm), storedRuns(local));
    for (const id of storedRuns(local)) assert.equal(curve(viaSlurm, id), curve(local, id), `run ${id}`);
    const ra = ceg(['report', '--scale', 'smoke', '--runs', viaSlurm]);
    const rb = ceg(['report', '--scale', 'smoke', '--runs', local]);
    assert.equal(ra.code, 0, ra.err);
    assert.equal(maskWallClock(ra.out.replaceAll(viaSlurm, 'STORE')), maskWallClock(rb.out.replaceAll(local, 'STORE')));
    assert.match(ra.out, /Rotary embeddings \(RoPE\)/);
    // the job script is kept beside the store; nothing missing: nothing submitted
    const jobs = fs.readdirSync(path.join(viaSlurm, SLURM_DIR));
    assert.equal(jobs.length, 1);
    assert.ok(fs.existsSync(path.join(viaSlurm, SLURM_DIR, jobs[0], 'job.sh')));
    const again = ceg(['sweep', '--scale', 'smoke', '--seeds', '2', '--executor', 'slurm', '--runs', viaSlurm]);
    assert.equal(again.code, 0, again.err);
    assert.doesNotMatch(again.err, /submitted SLURM job/);
    assert.equal(fs.readdirSync(path.join(viaSlurm, SLURM_DIR)).length, 1);
  },
);

const LONG = { train: { steps: 600, evalInterval: 25, checkpointInterval: 25, decaySteps: 600 } };

test(
  'a task killed mid-run by scancel leaves a checkpoint; a re-run submits only that run and resumes it to the same numbers',
  needsCluster,
  async () => {
    assertCluster();
    const root = tmp('scancel');
    const cfg = path.join(root, '..', `ceg-slurm-long-${process.pid}.json`);
    fs.writeFileSync(cfg, JSON.stringify(LONG));
    const args = [
      'sweep',
      '--scale',
      'smoke',
      '--innovations',
      'baseline',
      '--seeds',
      '1',
      '--config',
      cfg,
      '--executor',
      'slurm',
    ];
    const sub = ceg([...args, '--no-wait', '--runs', root]);
    assert.equal(sub.code, 0, sub.err);
    const jobId = jobIdOf(sub.out);
    const id = runId(runSpec('baseline', 'smoke', 1, 'wasm', { overrides: LONG }));
    // wait for a checkpoint past the first, then cancel
    for (let i = 0; ; i++) {
      const ck = fs.existsSync(path.join(root, id))
        ? fs.readdirSync(path.join(root, id)).filter((d) => /^ckpt-\d+$/.test(d))
        : [];
      if (ck.some((d) => Number(d.slice(5)) >= 40)) break;
      assert.ok(i < 2400 && squeue(jobId).length, 'the task ended before it was cancelled');
      await sleep(100);
    }
    execFileSync('scancel', [jobId]);
    await waitGone(jobId);
    const st = JSON.parse(fs.readFileSync(path.join(root, id, 'status.json'), 'utf8'));
    assert.notEqual(st.state, 'done', 'cancelled before the end');
    const rerun = ceg([...args, '--runs', root], 600_000);
    assert.equal(rerun.code, 0, rerun.err);
    assert.match(rerun.err, /submitted SLURM job array \d+: 1 run\(s\) not in the store/);
    const logs = path.join(root, SLURM_DIR);
    const second = fs.readdirSync(logs).sort().at(-1)!;
    const log = fs
      .readdirSync(path.join(logs, second, 'logs'))
      .map((f) => fs.readFileSync(path.join(logs, second, 'logs', f), 'utf8'))
      .join('');
    assert.doesNotMatch(log, /step 1\/600/, 'resumed from the checkpoint, not from step 0');
    // bit-for-bit: the same curve as an uninterrupted local run
    const ref = tmp('scancel-ref');
    const l = ceg(
      ['sweep', '--scale', 'smoke', '--innovations', 'baseline', '--seeds', '1', '--config', cfg, '--runs', ref],
      600_000,
    );
    assert.equal(l.code, 0, l.err);
    assert.equal(curve(root, id), curve(ref, id));
    fs.rmSync(cfg, { force: true });
  },
);

test('two arrays over one store train no run twice; the throttle is respected', needsCluster, async () => {
  assertCluster();
  const root = tmp('two');
  const cfg = path.join(root, '..', `ceg-slurm-mid-${process.pid}.json`);
  fs.writeFileSync(cfg, JSON.stringify({ train: { steps: 60, decaySteps: 60 } }));
  const args = [
    'sweep',
    '--scale',
    'smoke',
    '--innovations',
    'baseline,layernorm',
    '--seeds',
    '2',
    '--config',
    cfg,
    '--executor',
    'slurm',
    '--no-wait',
    '--runs',
    root,
  ];
  const a = ceg([...args, '--throttle', '1']);
  assert.equal(a.code, 0, a.err);
  const ja = jobIdOf(a.out);
  // the second array over the same runs: the kept job script submitted again by hand (a second
  // `ceg sweep --no-wait` submits nothing while the first array is queued: tested further down)
  const [first] = fs.readdirSync(path.join(root, SLURM_DIR));
  const jb = execFileSync('sbatch', ['--parsable', path.join(root, SLURM_DIR, first, 'job.sh')], { encoding: 'utf8' })
    .trim()
    .split(';')[0];
  assert.match(jb, /^\d+$/);
  let maxA = 0;
  let maxB = 0;
  await Promise.all([
    waitGone(ja, (s) => (maxA = Math.max(maxA, s.filter((x) => x === 'RUNNING').length))),
    waitGone(jb, (s) => (maxB = Math.max(maxB, s.filter((x) => x === 'RUNNING').length))),
  ]);
  assert.equal(maxA, 1, 'throttle %1: one task of the array at a time');
  assert.equal(maxB, 1);
  // every run done, and trained by exactly one task; the others found it done (cached)
  const runs = storedRuns(root);
  assert.equal(runs.length, 4);
  const logs: string[] = [];
  for (const j of fs.readdirSync(path.join(root, SLURM_DIR)))
    for (const f of fs.readdirSync(path.join(root, SLURM_DIR, j, 'logs')))
      logs.push(fs.readFileSync(path.join(root, SLURM_DIR, j, 'logs', f), 'utf8'));
  for (const id of runs) {
    assert.equal(JSON.parse(fs.readFileSync(path.join(root, id, 'status.json'), 'utf8')).state, 'done');
    const finals = logs.flatMap((t) => t.split('\n')).filter((l) => l.includes(`run ${id}, final val loss`));
    assert.equal(finals.length, 2, `two tasks asked for run ${id}`);
    assert.equal(
      finals.filter((l) => !l.endsWith('(cached)')).length,
      1,
      `run ${id} trained once: ${finals.join(' | ')}`,
    );
  }
  fs.rmSync(cfg, { force: true });
});

test(
  'the time-limit warning (USR1 to the batch shell) checkpoints, requeues the task, and it resumes to the same numbers',
  needsCluster,
  async () => {
    assertCluster();
    const root = tmp('requeue');
    const cfg = path.join(root, '..', `ceg-slurm-requeue-${process.pid}.json`);
    fs.writeFileSync(cfg, JSON.stringify(LONG));
    const args = ['sweep', '--scale', 'smoke', '--innovations', 'baseline', '--seeds', '1', '--config', cfg];
    const sub = ceg([...args, '--executor', 'slurm', '--no-wait', '--runs', root]);
    assert.equal(sub.code, 0, sub.err);
    const jobId = jobIdOf(sub.out);
    const id = runId(runSpec('baseline', 'smoke', 1, 'wasm', { overrides: LONG }));
    for (let i = 0; ; i++) {
      const ck = fs.existsSync(path.join(root, id))
        ? fs.readdirSync(path.join(root, id)).filter((d) => /^ckpt-\d+$/.test(d))
        : [];
      if (ck.some((d) => Number(d.slice(5)) >= 50)) break;
      assert.ok(i < 2400 && squeue(jobId).length, 'the task ended before the warning');
      await sleep(100);
    }
    // what SLURM sends --signal-lead seconds before the time limit (#SBATCH --signal=B:USR1@S)
    execFileSync('scancel', ['--batch', '--signal=USR1', `${jobId}_0`]);
    await waitGone(jobId);
    assert.equal(JSON.parse(fs.readFileSync(path.join(root, id, 'status.json'), 'utf8')).state, 'done');
    const dir = path.join(root, SLURM_DIR, fs.readdirSync(path.join(root, SLURM_DIR))[0], 'logs');
    const log = fs
      .readdirSync(dir)
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
      .join('');
    assert.match(log, /time limit near: checkpointing/);
    assert.match(log, /requeueing it/);
    assert.match(log, /\(restart 1\)/, 'the same task ran again');
    const ref = tmp('requeue-ref');
    const l = ceg([...args, '--runs', ref], 600_000);
    assert.equal(l.code, 0, l.err);
    assert.equal(curve(root, id), curve(ref, id));
    fs.rmSync(cfg, { force: true });
  },
);

test('a submission sbatch refuses (no such partition) is one message, exit 2, no job folder left', needsCluster, () => {
  assertCluster();
  const root = tmp('refused');
  const r = ceg([
    'sweep',
    '--scale',
    'smoke',
    '--innovations',
    'baseline',
    '--executor',
    'slurm',
    '--partition',
    'nosuchpartition',
    '--runs',
    root,
  ]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /ceg: --executor slurm: sbatch refused .*job\.sh: .*partition/i);
  const jobs = fs.existsSync(path.join(root, SLURM_DIR)) ? fs.readdirSync(path.join(root, SLURM_DIR)) : [];
  assert.deepEqual(jobs, []);
  assert.deepEqual(storedRuns(root), []);
});

/** Run ids of a stage of the smoke study, with the LRs the store's results choose. */
function studyRunIds(root: string, stage: StudyStage): string[] {
  const plan = getPlan('smoke');
  return planRuns(plan, {
    backend: 'wasm',
    lrOf: chooseLrs(plan, new RunStore(root), 'wasm').lrOf,
    stages: [stage],
  }).map((r) => r.id);
}

test(
  'ceg study --plan smoke --executor slurm: --no-wait submits a stage (forks behind their trunks) and says re-running continues; the finished study has the same runs and curves as the local executor',
  needsCluster,
  async () => {
    assertCluster();
    const viaSlurm = tmp('study-slurm');
    const local = tmp('study-local');
    // --no-wait: the LR sweep's trunks, and its forks after them (afterok); nothing of later stages
    const sub = ceg(['study', '--plan', 'smoke', '--executor', 'slurm', '--no-wait', '--runs', viaSlurm]);
    assert.equal(sub.code, 0, sub.err);
    const m = /stage lr-sweep: submitted SLURM jobs (\d+), (\d+) \((\d+) trunks, then (\d+) forks\)/.exec(sub.out);
    assert.ok(m, sub.out + sub.err);
    assert.match(sub.out, /run the same command again to continue/);
    const [, trunkJob, forkJob, nTrunks, nForks] = m;
    const jobDirOf = (id: string) =>
      fs
        .readdirSync(path.join(viaSlurm, SLURM_DIR))
        .find((d) => fs.readFileSync(path.join(viaSlurm, SLURM_DIR, d, 'job-id'), 'utf8').trim() === id)!;
    const forkScript = fs.readFileSync(path.join(viaSlurm, SLURM_DIR, jobDirOf(forkJob), 'job.sh'), 'utf8');
    assert.ok(forkScript.includes(`#SBATCH --dependency=afterok:${trunkJob}\n`), forkScript);
    assert.match(forkScript, /--run [0-9a-f]{16} --spec \S+\/specs\/[0-9a-f]{16}\.json/);
    await Promise.all([waitGone(trunkJob), waitGone(forkJob)]);
    const sweepIds = studyRunIds(viaSlurm, 'lr-sweep');
    assert.equal(sweepIds.length, Number(nTrunks) + Number(nForks));
    assert.deepEqual(storedRuns(viaSlurm), [...sweepIds].sort(), 'exactly the LR sweep is stored');
    // the same command without --no-wait continues: later stages, each stage's trunks then forks
    const rest = ceg(['study', '--plan', 'smoke', '--executor', 'slurm', '--runs', viaSlurm], 1_800_000);
    assert.equal(rest.code, 0, rest.err);
    assert.match(rest.err, /stage lr-sweep: \d+ runs \(\d+ ended: trained or diverged\)/);
    assert.doesNotMatch(
      rest.err.split('stage frontier')[0],
      /submitted SLURM job/,
      'the finished stage is not submitted again',
    );
    const l = ceg(['study', '--plan', 'smoke', '--jobs', '1', '--runs', local], 1_800_000);
    assert.equal(l.code, 0, l.err);
    assert.deepEqual(storedRuns(viaSlurm), storedRuns(local));
    for (const id of storedRuns(local)) assert.equal(curve(viaSlurm, id), curve(local, id), `run ${id}`);
    // the study's report from either store is the same
    assert.equal(rest.out.replaceAll(viaSlurm, 'STORE'), l.out.replaceAll(local, 'STORE'));
    const again = ceg(['study', '--plan', 'smoke', '--executor', 'slurm', '--runs', viaSlurm]);
    assert.equal(again.code, 0, again.err);
    assert.doesNotMatch(again.err, /submitted SLURM job/);
  },
);

test(
  '--no-wait again while the earlier arrays are still queued submits nothing twice (a sweep, a study and its forks)',
  needsCluster,
  async () => {
    assertCluster();
    const root = tmp('again');
    const cfg = path.join(root, '..', `ceg-slurm-again-${process.pid}.json`);
    fs.writeFileSync(cfg, JSON.stringify(LONG));
    const args = [
      'sweep',
      '--scale',
      'smoke',
      '--innovations',
      'baseline,rope',
      '--seeds',
      '1',
      '--config',
      cfg,
      '--executor',
      'slurm',
      '--no-wait',
      '--throttle',
      '1',
      '--runs',
      root,
    ];
    const a = ceg(args);
    assert.equal(a.code, 0, a.err);
    const jobA = jobIdOf(a.out);
    const b = ceg(args);
    assert.equal(b.code, 0, b.err);
    assert.match(
      b.out,
      new RegExp(`the 2 missing run\\(s\\) are still queued or running in SLURM job ${jobA}: nothing submitted`),
    );
    assert.equal(fs.readdirSync(path.join(root, SLURM_DIR)).length, 1, 'no second job folder');
    // a study: its trunks' and forks' arrays are still queued, so a second --no-wait submits neither
    const sroot = tmp('again-study');
    const study = ['study', '--plan', 'smoke', '--executor', 'slurm', '--no-wait', '--throttle', '1', '--runs', sroot];
    const s1 = ceg(study);
    assert.equal(s1.code, 0, s1.err);
    const [, trunks, forks] = /submitted SLURM jobs (\d+), (\d+)/.exec(s1.out) ?? assert.fail(s1.out);
    const s2 = ceg(study);
    assert.equal(s2.code, 0, s2.err);
    // the smoke plan's LR-sweep stage: its trunks and their forks (from the plan, not typed in)
    const sweepRuns = planRuns(getPlan('smoke'), { backend: 'wasm', stages: ['lr-sweep'] });
    const nForks = sweepRuns.filter((r) => r.role === 'fork').length;
    const nTrunks = sweepRuns.length - nForks;
    assert.match(
      s2.out,
      new RegExp(
        `stage lr-sweep: nothing submitted, earlier SLURM jobs ${trunks}, ${forks} \\(${nTrunks} trunks still queued or running from before, then ${nForks} forks still queued or running from before\\)`,
      ),
      s2.out,
    );
    assert.equal(fs.readdirSync(path.join(sroot, SLURM_DIR)).length, 2, 'no new job folders');
    execFileSync('scancel', [jobA, trunks, forks]);
    await Promise.all([waitGone(jobA), waitGone(trunks), waitGone(forks)]);
    fs.rmSync(cfg, { force: true });
  },
);
