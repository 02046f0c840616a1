/**
 * Find a private Vulkan driver (made by scripts/lavapipe.sh in <repo>/.vk) from inside the
 * running process, before Dawn (dawn.node) is loaded, so that `initEngine({backend:'webgpu'})`
 * works without sourcing the script first.
 *
 * What has to happen before Dawn asks the Vulkan loader for an adapter:
 *  - VK_ICD_FILENAMES / VK_DRIVER_FILES name the driver's ICD json. The loader reads them
 *    with getenv() when Dawn creates its Vulkan instance, so setting process.env works.
 *  - libvulkan.so.1 (the loader, which Dawn dlopen()s by that name) and libdrm.so.2 (a
 *    dependency of the lavapipe .so) must be findable. LD_LIBRARY_PATH is read by the dynamic
 *    linker only at process start, so changing it here would do nothing. Instead we load both
 *    libraries by absolute path with RTLD_GLOBAL | RTLD_NODELETE: once a library with soname
 *    libvulkan.so.1 is loaded, a later dlopen("libvulkan.so.1") returns it, and lavapipe's
 *    DT_NEEDED libdrm.so.2 resolves to the one already loaded. `process.dlopen` throws
 *    "did not self-register" (they are not Node addons), but RTLD_NODELETE keeps them loaded.
 * Variables already set by the user (e.g. an NVIDIA ICD) are never overridden.
 * CEG_VK_DIR names another cache folder; CEG_VK_DIR=none turns this off.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectPath } from '../paths.js';
import { readEnv } from '../env.js';

export interface VulkanEnvReport {
  /** the cache folder looked at, or null when turned off */
  vkDir: string | null;
  /** libraries loaded from the cache folder by absolute path */
  preloaded: string[];
  /** environment variables this call set (name -> value) */
  set: Record<string, string>;
  /** the ICD json the loader will use, if any is named */
  icd: string | null;
}

const RTLD_NODELETE = 0x1000; // glibc value; not exported in os.constants.dlopen
let done: VulkanEnvReport | null = null;

/** Default cache folder: <repo>/.vk (this file is <repo>/src/engine/vulkan-env.ts). */
export function defaultVkDir(): string {
  return projectPath('.vk');
}

function multiarchTriplet(): string | null {
  if (process.arch === 'x64') return 'x86_64-linux-gnu';
  if (process.arch === 'arm64') return 'aarch64-linux-gnu';
  return null;
}

/** Prepare the process environment for Dawn's Vulkan backend (once per process). */
export function prepareVulkanEnv(): VulkanEnvReport {
  if (done) return done;
  const setting = readEnv('CEG_VK_DIR');
  const vkDir = setting === 'none' ? null : path.resolve(setting || defaultVkDir());
  const report: VulkanEnvReport = { vkDir, preloaded: [], set: {}, icd: null };
  const triplet = multiarchTriplet();
  if (vkDir && triplet && process.platform === 'linux' && fs.existsSync(vkDir)) {
    const libDir = path.join(vkDir, 'root', 'usr', 'lib', triplet);
    const flags = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE;
    for (const lib of ['libdrm.so.2', 'libvulkan.so.1']) {
      const file = path.join(libDir, lib);
      if (!fs.existsSync(file)) continue;
      try {
        process.dlopen({ exports: {} } as NodeJS.Module, file, flags);
      } catch (e) {
        // expected for a plain shared library; anything else means it failed to load
        if (!/self-register/.test((e as Error).message)) throw e;
      }
      report.preloaded.push(file);
    }
    const icd = path.join(vkDir, 'lvp_icd.json');
    if (fs.existsSync(icd) && !process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES) {
      process.env.VK_ICD_FILENAMES = report.set.VK_ICD_FILENAMES = icd;
      process.env.VK_DRIVER_FILES = report.set.VK_DRIVER_FILES = icd;
    }
  }
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = report.set.XDG_RUNTIME_DIR = os.tmpdir();
  report.icd = process.env.VK_DRIVER_FILES || process.env.VK_ICD_FILENAMES || null;
  done = report;
  return report;
}
