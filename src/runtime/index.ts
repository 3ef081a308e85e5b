import { WasmformerError } from '../errors.js';
import { Arena } from './arena.js';
import { Kernels, type KernelExports } from './kernels.js';
import { chooseBuild, compileModule, wasmUrl, type Build, type WasmSource } from './wasm.js';

export { Arena, index, type Region } from './arena.js';
export { Heap } from './heap.js';
export { Act, Kernels, MAX_Q8_K, type KernelExports, type Packed, type Quantized, type QuantizedRows } from './kernels.js';
export { firstNonFinite, quantizeMatrix } from './quantize.js';
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

const PAGE = 65536;
/** wasm32 addresses 4 GiB at most. */
const MAX_PAGES = 65536;

/** The shipped builds, compiled once per process; a failed compile is forgotten, so it can be retried. */
const modules = new Map<Build, Promise<WebAssembly.Module>>();

function shippedModule(build: Build): Promise<WebAssembly.Module> {
  let module = modules.get(build);
  if (module === undefined) {
    module = compileModule(wasmUrl(build), `the ${build} build`);
    modules.set(build, module);
    module.catch(() => modules.delete(build));
  }
  return module;
}

/** Instantiates the kernels over a new memory that JS owns. */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const build = chooseBuild(options.build);
  const module = await (options.wasm === undefined ? shippedModule(build) : compileModule(options.wasm));
  const memory = newMemory(options.initialBytes ?? 0);
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, { env: { memory } });
  } catch (e) {
    throw new WasmformerError('BAD_FILE', `options.wasm: not wasmformer's kernel module (${(e as Error).message})`);
  }
  const raw = instance.exports as unknown as KernelExports;
  if (typeof raw.heapBase !== 'function' || typeof raw.relaxed !== 'function') {
    throw new WasmformerError('BAD_FILE', "options.wasm: not wasmformer's kernel module (it lacks heapBase and relaxed)");
  }
  const arena = new Arena(memory, raw.heapBase());
  // A module given as options.wasm says itself which build it is.
  return { build: raw.relaxed() ? 'relaxed' : 'simd', memory, arena, kernels: new Kernels(raw, arena) };
}

/** A memory of at least `bytes`; the engine's refusal (address space, a limit) is OUT_OF_MEMORY. */
function newMemory(bytes: number): WebAssembly.Memory {
  const pages = Math.max(1, Math.ceil(bytes / PAGE));
  if (pages > MAX_PAGES) {
    throw new WasmformerError('OUT_OF_MEMORY', `the model needs ${bytes} bytes of WebAssembly memory, more than wasm32's 4 GiB`);
  }
  try {
    return new WebAssembly.Memory({ initial: pages });
  } catch (e) {
    throw new WasmformerError('OUT_OF_MEMORY',
      `the engine refused a WebAssembly memory of ${pages * PAGE} bytes (${(e as Error).message}): dispose() models no longer needed`);
  }
}
