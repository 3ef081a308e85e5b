import { WasmformerError } from '../errors.js';

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
export function chooseBuild(wanted: Build | 'auto' = 'auto'): Build {
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

/** The URL of a build's .wasm file, shipped beside this package's JS. */
export function wasmUrl(build: Build): URL {
  return new URL(`../wasmformer.${build}.wasm`, import.meta.url);
}

/** Compiles the module from a path, a URL (file: in Node, fetched elsewhere) or bytes. */
export async function compileModule(source: WasmSource): Promise<WebAssembly.Module> {
  if (source instanceof ArrayBuffer || source instanceof Uint8Array) {
    return WebAssembly.compile(source as BufferSource);
  }
  return WebAssembly.compile((await readBytes(source)) as Uint8Array<ArrayBuffer>);
}

/** Reads a file from a path or URL: the file system for paths and file: URLs, fetch otherwise. */
export async function readBytes(source: string | URL): Promise<Uint8Array<ArrayBuffer>> {
  const url = typeof source === 'string' ? toUrl(source) : source;
  if (url === null || url.protocol === 'file:') {
    const fs = await nodeModule<typeof import('node:fs/promises')>('node:fs/promises');
    return new Uint8Array(await fs.readFile(url ?? (source as string)));
  }
  const response = await fetch(url);
  if (!response.ok) {
    throw new WasmformerError('BAD_FILE', `${url}: HTTP ${response.status} ${response.statusText}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

/** True when running under Node (or a runtime with Node's file system). */
export function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/** A string that is a URL in a browser, or null where it is a file-system path. */
export function toUrl(source: string): URL | null {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) return new URL(source);
  if (isNode()) return null;
  return new URL(source, globalThis.location?.href);
}

/** Imports a Node built-in without letting a browser bundler try to resolve it. */
export async function nodeModule<T>(name: string): Promise<T> {
  return (await import(/* @vite-ignore */ /* webpackIgnore: true */ name)) as T;
}
