// Builds the optional native matmul addon (native/sgemm.cc -> native/build/ceg_native.node) with the
// machine's g++ and Node's own N-API headers (no node-gyp, no downloads, no extra packages).
// Run by `npm install` (postinstall) and `npm run build:native`. Never fails the install: without
// a compiler or headers it prints why, and the engine falls back to the wasm kernels (announced).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'build', 'ceg_native.node');
const say = (s) => process.stderr.write(`[ceg native] ${s}\n`);
const include = [path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'].find(
  (d) => existsSync(path.join(d, 'node_api.h')),
);
const cxx = process.env.CXX || 'g++';
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`usage: npm run build:native
Build the optional native matmul addon (native/sgemm.cc -> native/build/ceg_native.node) with g++
and Node's N-API headers. Runs at npm install too; never fails it. CEG_NATIVE=0 skips the build,
CXX chooses the compiler.`);
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
  const args = ['-O3', '-march=native', '-std=c++17', '-shared', '-fPIC', '-fno-exceptions', '-DNODE_GYP_MODULE_NAME=ceg_native',
    `-I${include}`, path.join(here, 'sgemm.cc'), '-o', out];
  if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
  const r = spawnSync(cxx, args, { encoding: 'utf8' });
  if (r.status === 0) say(`built ${path.relative(process.cwd(), out)} (${cxx} -O3 -march=native)`);
  else say(`build failed; the wasm kernels will be used:\n${(r.stderr || r.error?.message || '').slice(0, 2000)}`);
}
