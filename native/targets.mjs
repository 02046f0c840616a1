// The CPU targets the native addon is built for (native/build.mjs) and checked against before it
// is loaded (src/engine/native.ts). Shared by both so the build and the guard cannot disagree.
// x86-64 micro-architecture levels (the psABI's x86-64-v2/v3/v4), as /proc/cpuinfo names their
// features. GCC >= 11 accepts -march=x86-64-vN and then uses no instruction beyond that level.
export const X86_LEVELS = [
  { march: 'x86-64-v2', requires: ['cx16', 'lahf_lm', 'popcnt', 'pni', 'sse4_1', 'sse4_2', 'ssse3'] },
  { march: 'x86-64-v3', requires: ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'] },
  { march: 'x86-64-v4', requires: ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'] },
];

/** The highest x86-64 level whose features (and those of every level below) are all in `flags`. */
export function x86Level(flags) {
  let best = { march: 'x86-64', requires: [] };
  const acc = [];
  for (const level of X86_LEVELS) {
    if (!level.requires.every((f) => flags.has(f))) break;
    acc.push(...level.requires);
    best = { march: level.march, requires: [...acc] };
  }
  return best;
}
