/**
 * The environment variables of the project: the one table, and the only reader of
 * `process.env.CEG_*` in src/, bench/ and scripts/ (test/env.test.ts checks both, and that
 * docs/environment.md lists exactly these). They pick paths, the backend, the kernels and how
 * output looks. None is part of a run's config: options that change numbers are config fields
 * (src/config.ts, `--config`) and so part of the run's id. The backend is in the run's id too;
 * the kernel switches change float rounding only and are recorded in each run's provenance
 * (`engine.flags` in status.json: kernels, threads, dawnOptions), which the stale check compares.
 */

export interface EnvVar {
  /** what it picks, one line (the docs table's text) */
  picks: string;
  /**
   * who it is for: 'user'; 'script' (read by a shell script in scripts/, not by TypeScript);
   * 'internal' (set by the project for its own child processes); 'test' (test runs only)
   */
  audience: 'user' | 'script' | 'internal' | 'test';
  /** how it can touch numbers, if at all */
  numbers: string;
}

export const ENV_VARS = {
  CEG_BACKEND: {
    picks: 'the tensor backend when `--backend` is not given: `wasm` (default), `webgpu`, `tensorflow`, `cpu`',
    audience: 'user',
    numbers: "the backend is part of every run's id",
  },
  CEG_KERNELS: {
    picks: '`stock`: the shipped tfjs wasm kernels, for before/after benchmarks',
    audience: 'user',
    numbers: 'kernel rounding only; recorded (`engine.flags.kernels`)',
  },
  CEG_NATIVE: {
    picks: '`0`: do not use the native matmul addon',
    audience: 'user',
    numbers: 'kernel rounding only; recorded (`engine.flags.kernels`)',
  },
  CEG_BLAS: {
    picks: '`0`: the native addon multiplies with its own SGEMM even where the system OpenBLAS is present',
    audience: 'user',
    numbers: 'kernel rounding only; recorded (`kernels`: `BatchMatMul:openblas-<version>`)',
  },
  CEG_DAWN_OPTIONS: {
    picks: 'comma-separated Dawn toggles for the webgpu backend',
    audience: 'user',
    numbers: 'recorded when set (`engine.flags.dawnOptions`)',
  },
  CEG_VK_DIR: {
    picks: "the Vulkan driver folder for webgpu (default `.vk/` from scripts/lavapipe.sh; `none`: the system's)",
    audience: 'user',
    numbers: 'none (the adapter is recorded)',
  },
  CEG_RUNS: { picks: 'the run store folder (default `data/runs`; `--runs` wins)', audience: 'user', numbers: 'none' },
  CEG_CACHE: { picks: 'the token cache folder (default `data/cache`)', audience: 'user', numbers: 'none' },
  CEG_SCALE: {
    picks: 'the scale notebooks load or train (default `micro`; `npm run notebooks -- --scale` sets it)',
    audience: 'user',
    numbers: 'none: which runs, not how they train',
  },
  CEG_SEEDS: {
    picks: 'the seeds notebooks load or train, e.g. `1,2,3` (default 3 at micro, else 1)',
    audience: 'user',
    numbers: 'none: which runs, not how they train',
  },
  CEG_STUDY: {
    picks: 'the study plan notebooks 09-11 read (default `cpu`; `smoke` at scale smoke)',
    audience: 'user',
    numbers: 'none: which runs, not how they train',
  },
  CEG_PROGRESS: {
    picks:
      "`plain`: one line per progress update instead of a redrawn bar (`ipc`: internal, a sweep's child trainer sends its progress to the sweep)",
    audience: 'user',
    numbers: 'none',
  },
  CEG_CHROMIUM: {
    picks: 'the Chromium binary for static figure export (default `/usr/bin/chromium`)',
    audience: 'user',
    numbers: 'none',
  },
  CEG_NODE_DIR: {
    picks: 'scripts/node.sh: where other Node versions are cached (default `.node/`)',
    audience: 'script',
    numbers: 'none',
  },
  CEG_DEBIAN_SUITE: {
    picks: 'scripts/lavapipe.sh: the Debian suite Mesa comes from (default `bookworm`, its backports)',
    audience: 'script',
    numbers: 'none',
  },
  CEG_DEBIAN_MIRROR: {
    picks: 'scripts/lavapipe.sh: the Debian mirror (default `http://deb.debian.org/debian`)',
    audience: 'script',
    numbers: 'none',
  },
  CEG_SLURM_DIR: {
    picks: "scripts/slurm.sh: the local test cluster's state folder (default `/tmp/ceg-slurm`)",
    audience: 'script',
    numbers: 'none',
  },
  CEG_SLURM_CPUS: {
    picks: 'scripts/slurm.sh: CPUs of the local test partition (default: nproc)',
    audience: 'script',
    numbers: 'none',
  },
  CEG_PROGRESS_INDEX: {
    picks: "a sweep child's place in its sweep (`3/14`), for its progress label",
    audience: 'internal',
    numbers: 'none',
  },
  CEG_CLI_MAIN: {
    picks: '`1`: run src/cli/main.ts as the entry point when it is imported (tests)',
    audience: 'internal',
    numbers: 'none',
  },
  CEG_FAULTS: {
    picks: '`long`: more fault-injection rounds (`npm run test:faults`)',
    audience: 'test',
    numbers: 'none',
  },
  CEG_CLUSTER_TESTS: { picks: '`skip`: skip the SLURM tests (CI runs them once)', audience: 'test', numbers: 'none' },
} as const satisfies Record<string, EnvVar>;

export type EnvName = keyof typeof ENV_VARS;

/** The value of one of the project's variables, as set (undefined when unset; '' stays ''). */
export function readEnv(name: EnvName): string | undefined {
  return process.env[name];
}
