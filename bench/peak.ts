/**
 * Rough fp32 peak of this CPU from /proc/cpuinfo, with the assumption stated:
 * FLOP per cycle per core = 32 with AVX-512 (one 512-bit FMA unit: 16 lanes x 2),
 * 16 with AVX2+FMA (one 256-bit FMA unit), 8 otherwise; clock = the reported "cpu MHz"
 * (nominal: turbo and a second FMA unit would raise the true peak, so % of peak is an upper estimate).
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
  const [isa, flopPerCycle] = flags.has('avx512f') ? ['AVX-512', 32] : flags.has('fma') ? ['AVX2+FMA', 16] : ['SSE', 8];
  const ghz = mhz / 1000;
  return {
    model: field('model name') ?? cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    ghz,
    flopPerCycle,
    isa,
    perCoreGflops: ghz * flopPerCycle,
    assumption: `${isa}: ${flopPerCycle} fp32 FLOP/cycle/core (one FMA unit) x ${ghz.toFixed(2)} GHz nominal`,
  };
}
