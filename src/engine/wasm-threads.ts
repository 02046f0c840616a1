import { EngineError } from './index.js';
export async function enableWasmThreads(_n: number): Promise<void> {
  throw new EngineError('wasm threads are not available yet in Node; use threads=1');
}
