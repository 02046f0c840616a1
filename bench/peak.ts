/**
 * Rough fp32 peak of this CPU from /proc/cpuinfo, with the assumption stated:
 * FLOP per cycle per core = 64 with AVX-512 (two 512-bit FMA units: 2 x 16 lanes x 2, as on
 * Xeon Gold/Platinum; the native SGEMM measured 175 GFLOP/s on one core of the 2.6 GHz reference
 * machine, more than one unit could give), 32 with AVX2+FMA (two 256-bit units), 8 otherwise;
 * clock = the reported "cpu MHz" (nominal: turbo raises the true peak, so % of peak is an upper estimate).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface CpuPeak {
  model: string;
  cores: number;
  ghz: number;
  flopPerCycle: number;
  isa: string;
  /** GFLOP/s of one core */
  perCoreGflops: number;
  assumption: string;
}

export function cpuPeak(): CpuPeak {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux: fall back to os.cpus() */
  }
  const field = (name: string) => text.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim();
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  const cpus = os.cpus();
  const mhz = Number(field('cpu MHz') ?? cpus[0]?.speed ?? 2000);
  const [isa, flopPerCycle] = flags.has('avx512f') ? ['AVX-512', 64] : flags.has('fma') ? ['AVX2+FMA', 32] : ['SSE', 8];
  const ghz = mhz / 1000;
  return {
    model: field('model name') ?? cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    ghz,
    flopPerCycle,
    isa,
    perCoreGflops: ghz * flopPerCycle,
    assumption: `${isa}: ${flopPerCycle} fp32 FLOP/cycle/core (two FMA units) x ${ghz.toFixed(2)} GHz nominal`,
  };
}
