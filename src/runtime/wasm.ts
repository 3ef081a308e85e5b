import { WasmformerError } from '../errors.js';
import { describe } from '../io/describe.js';
import { readFile } from '../io/source.js';

/** The two builds of the same kernels: SIMD128 mul + add, or relaxed SIMD fused multiply-add. */
export type Build = 'simd' | 'relaxed';

/** Where the module comes from: a path or URL of the .wasm file, or its bytes. */
export type WasmSource = string | URL | ArrayBuffer | Uint8Array;

// (module (func (result v128) v128.const 0 v128.const 0 v128.const 0 f32x4.relaxed_madd))
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03,
  0x02, 0x01, 0x00, 0x0a, 0x3d, 0x01, 0x3b, 0x00,
  ...[0, 1, 2].flatMap(() => [0xfd, 0x0c, ...new Array<number>(16).fill(0)]),
  0xfd, 0x85, 0x02, 0x0b,
]);
// (module (func (result v128) v128.const 0))
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03,
  0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array<number>(16).fill(0), 0x0b,
]);

/** The builds this engine can run, best first. */
export function supportedBuilds(): Build[] {
  const builds: Build[] = [];
  if (WebAssembly.validate(RELAXED_PROBE)) builds.push('relaxed');
  if (WebAssembly.validate(SIMD_PROBE)) builds.push('simd');
  return builds;
}

/** The best build this engine validates; an UNSUPPORTED error when it lacks SIMD128. */
export function chooseBuild(wanted: unknown = 'auto'): Build {
  if (wanted !== 'auto' && wanted !== 'simd' && wanted !== 'relaxed') {
    throw new WasmformerError('BAD_ARGUMENT', `options.build must be 'auto', 'simd' or 'relaxed', got ${describe(wanted)}`);
  }
  const builds = supportedBuilds();
  if (builds.length === 0) {
    throw new WasmformerError('UNSUPPORTED', 'this engine does not support WebAssembly SIMD128');
  }
  if (wanted === 'auto') return builds[0];
  if (!builds.includes(wanted)) {
    const hint = wanted === 'relaxed' ? ' (Node 20 needs --experimental-wasm-relaxed-simd)' : '';
    throw new WasmformerError('UNSUPPORTED', `this engine cannot run the ${wanted} build${hint}`);
  }
  return wanted;
}

/** The URL of a build's .wasm file, shipped beside this package's JS (`shared`: the one importing a shared memory, for threads). */
export function wasmUrl(build: Build, shared = false): URL {
  return new URL(`../wasmformer.${build}${shared ? '.shared' : ''}.wasm`, import.meta.url);
}

/**
 * Compiles the module from a path, a URL (file: in Node, fetched elsewhere) or bytes. A file
 * that cannot be read or is not a WebAssembly module is a BAD_FILE error naming it.
 */
export async function compileModule(source: WasmSource, name = 'options.wasm'): Promise<WebAssembly.Module> {
  let bytes: Uint8Array;
  let file = name;
  if (source instanceof ArrayBuffer || source instanceof Uint8Array) {
    bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
  } else if (typeof source === 'string' || source instanceof URL) {
    file = String(source);
    bytes = await readFile(source, 'BAD_FILE');
  } else {
    throw new WasmformerError('BAD_ARGUMENT', `${name} must be a path, a URL, an ArrayBuffer or a Uint8Array, got ${describe(source)}`);
  }
  try {
    return await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new WasmformerError('BAD_FILE', `${file}: not a WebAssembly module this engine compiles (${(e as Error).message})`);
  }
}
