import { EngineError } from './index.js';
export async function initWebGPU(): Promise<Record<string, string | number | boolean>> {
  throw new EngineError('webgpu backend: not wired yet');
}
