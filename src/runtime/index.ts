import { WasmformerError } from '../errors.js';
import { Arena } from './arena.js';
import { CONTROL_BYTES } from './jobs.js';
import { Kernels, type KernelExports } from './kernels.js';
import { autoThreads, Team, threadsUnavailable } from './threads.js';
import { chooseBuild, compileModule, wasmUrl, type Build, type WasmSource } from './wasm.js';

export { Arena, index, type Region } from './arena.js';
export { Heap } from './heap.js';
export { Act, Kernels, MAX_Q8_K, type KernelExports, type Packed, type Quantized, type QuantizedRows } from './kernels.js';
export { firstNonFinite, quantizeMatrix } from './quantize.js';
export { Team, type Parallel } from './threads.js';
export { chooseBuild, supportedBuilds, type Build, type WasmSource } from './wasm.js';

export interface RuntimeOptions {
  /** Which build to run: 'auto' (default) takes relaxed SIMD where the engine validates it. */
  build?: Build | 'auto';
  /** The .wasm of that build, when it is not beside the package's JS (a bundler's asset URL). */
  wasm?: WasmSource;
  /** Bytes to reserve up front, so that loading a model does not grow the memory piecemeal. */
  initialBytes?: number;
  /**
   * Threads for the kernels (default 1): the caller and `threads - 1` helper workers on a shared
   * memory; 'auto': the machine's cores, at most 4. Where threads cannot be had, one runs, and
   * the Team's reason says why.
   */
  threads?: number | 'auto';
}

/** The most threads a runtime takes. */
export const MAX_THREADS = 64;

/** One kernel module instance with the one memory it works on, and the threads that run it. */
export interface Runtime {
  readonly build: Build;
  readonly memory: WebAssembly.Memory;
  readonly arena: Arena;
  readonly kernels: Kernels;
  readonly team: Team;
}

const PAGE = 65536;
/** wasm32 addresses 4 GiB at most. */
const MAX_PAGES = 65536;

/** The shipped builds (plain, or importing a shared memory), compiled once per process; a failed compile is forgotten, so it can be retried. */
const modules = new Map<string, Promise<WebAssembly.Module>>();

function shippedModule(build: Build, shared: boolean): Promise<WebAssembly.Module> {
  const key = shared ? `${build}.shared` : build;
  let module = modules.get(key);
  if (module === undefined) {
    module = compileModule(wasmUrl(build, shared), `the ${key} build`);
    modules.set(key, module);
    module.catch(() => modules.delete(key));
  }
  return module;
}

/**
 * Instantiates the kernels over a new memory that JS owns, shared with helper threads when
 * options.threads asks for more than one and this context can have them.
 */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const build = chooseBuild(options.build);
  const threads = options.threads === 'auto' ? await autoThreads() : (options.threads ?? 1);
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= MAX_THREADS)) {
    throw new WasmformerError('BAD_ARGUMENT', `options.threads must be 'auto' or an integer in [1, ${MAX_THREADS}], got ${threads}`);
  }
  const bytes = options.initialBytes ?? 0;
  let why = threads > 1 ? threadsUnavailable() : null;
  let memory = threads > 1 && why === null ? sharedMemory(bytes) : null;
  if (threads > 1 && why === null && memory === null) why = 'this engine cannot make a shared WebAssembly.Memory (no WebAssembly threads)';
  const shared = memory !== null;
  memory ??= newMemory(bytes);
  const module = await (options.wasm === undefined ? shippedModule(build, shared) : compileModule(options.wasm));
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, { env: { memory } });
  } catch (e) {
    const hint = shared ? ' (with threads it must be a .shared.wasm build)' : '';
    throw new WasmformerError('BAD_FILE', `options.wasm: not wasmformer's kernel module${hint} (${(e as Error).message})`);
  }
  const raw = instance.exports as unknown as KernelExports;
  if (typeof raw.heapBase !== 'function' || typeof raw.relaxed !== 'function') {
    throw new WasmformerError('BAD_FILE', "options.wasm: not wasmformer's kernel module (it lacks heapBase and relaxed)");
  }
  const arena = new Arena(memory, raw.heapBase());
  const team = shared
    ? await Team.start(raw, arena, module, arena.alloc(CONTROL_BYTES / 4, 'the threads\' control block').ptr, threads - 1)
    : Team.solo(raw, arena, why);
  // A module given as options.wasm says itself which build it is.
  return { build: raw.relaxed() ? 'relaxed' : 'simd', memory, arena, kernels: new Kernels(raw, arena, team), team };
}

/** Pages for `bytes`; more than wasm32 addresses is OUT_OF_MEMORY. */
function pagesFor(bytes: number): number {
  const pages = Math.max(1, Math.ceil(bytes / PAGE));
  if (pages > MAX_PAGES) {
    throw new WasmformerError('OUT_OF_MEMORY', `the model needs ${bytes} bytes of WebAssembly memory, more than wasm32's 4 GiB`);
  }
  return pages;
}

/** A memory of at least `bytes`; the engine's refusal (address space, a limit) is OUT_OF_MEMORY. */
function newMemory(bytes: number): WebAssembly.Memory {
  const pages = pagesFor(bytes);
  try {
    return new WebAssembly.Memory({ initial: pages });
  } catch (e) {
    throw new WasmformerError('OUT_OF_MEMORY',
      `the engine refused a WebAssembly memory of ${pages * PAGE} bytes (${(e as Error).message}): dispose() models no longer needed`);
  }
}

/**
 * A shared memory of at least `bytes`, with the largest maximum the engine grants (it reserves
 * that much address space up front): wasm32's 4 GiB, else halves of it, else exactly `bytes`.
 * Null where the engine makes none (no WebAssembly threads): one thread then.
 */
function sharedMemory(bytes: number): WebAssembly.Memory | null {
  const pages = pagesFor(bytes);
  for (const maximum of [MAX_PAGES, MAX_PAGES / 2, MAX_PAGES / 4].filter((m) => m > pages).concat(pages)) {
    try {
      return new WebAssembly.Memory({ initial: pages, maximum, shared: true });
    } catch {
      // a smaller maximum, or none at all
    }
  }
  return null;
}
