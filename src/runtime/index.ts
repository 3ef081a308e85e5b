import { Arena } from './arena.js';
import { Kernels, type KernelExports } from './kernels.js';
import { chooseBuild, compileModule, wasmUrl, type Build, type WasmSource } from './wasm.js';

export { Arena, type Region } from './arena.js';
export { Act, Kernels, type KernelExports, type Packed } from './kernels.js';
export { chooseBuild, supportedBuilds, type Build, type WasmSource } from './wasm.js';

export interface RuntimeOptions {
  /** Which build to run: 'auto' (default) takes relaxed SIMD where the engine validates it. */
  build?: Build | 'auto';
  /** The .wasm of that build, when it is not beside the package's JS (a bundler's asset URL). */
  wasm?: WasmSource;
  /** Bytes to reserve up front, so that loading a model does not grow the memory piecemeal. */
  initialBytes?: number;
}

/** One kernel module instance with the one memory it works on. */
export interface Runtime {
  readonly build: Build;
  readonly memory: WebAssembly.Memory;
  readonly arena: Arena;
  readonly kernels: Kernels;
}

const modules = new Map<string, Promise<WebAssembly.Module>>();

/** Instantiates the kernels over a new memory that JS owns. Compiled modules are cached. */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const build = chooseBuild(options.build);
  const source = options.wasm ?? wasmUrl(build);
  const key = options.wasm === undefined ? build : null;
  let module = key === null ? undefined : modules.get(key);
  if (module === undefined) {
    module = compileModule(source);
    if (key !== null) modules.set(key, module);
  }
  const memory = new WebAssembly.Memory({ initial: 1 });
  const instance = await WebAssembly.instantiate(await module, { env: { memory } });
  const raw = instance.exports as unknown as KernelExports;
  const arena = new Arena(memory, raw.heapBase());
  arena.reserve(options.initialBytes ?? 0, 'the initial reservation');
  // A module given as options.wasm says itself which build it is.
  return { build: raw.relaxed() ? 'relaxed' : 'simd', memory, arena, kernels: new Kernels(raw, arena) };
}
