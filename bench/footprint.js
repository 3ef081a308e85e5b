// What the suites that compare peers share about our side and a process's footprint: our build
// and folders, the bytes a browser downloads, a fresh process's peak memory.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { constants, gzipSync } from 'node:zlib';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DIST = join(ROOT, 'dist');
export const MiB = 2 ** 20;

/** This package's build (dist/<file>), imported. */
export async function importDist(file) {
  const entry = join(DIST, file);
  if (!existsSync(entry)) throw new Error(`not available: dist/${file} missing (npm run build)`);
  return import(pathToFileURL(entry).href);
}

/** The folder ours loads for dtype: q8 reads the quantized folder `wasmformer quantize` wrote beside the float one. */
export const ourFolder = (dir, dtype) => (dtype === 'q8' ? `${dir}-q8` : dir);

/** Writes <dir>-q8 (wasmformer quantize) unless it is there. */
export function ensureQuantized(dir) {
  if (existsSync(join(ourFolder(dir, 'q8'), 'model.safetensors'))) return;
  const child = spawnSync(process.execPath, [join(DIST, 'cli.js'), 'quantize', '--model', dir, '--out', ourFolder(dir, 'q8')], { stdio: 'inherit' });
  if (child.status !== 0) throw new Error(`wasmformer quantize --model ${dir} failed`);
}

/**
 * This process's peak RSS in bytes. Linux: VmHWM, which starts afresh at exec; getrusage's
 * maxRSS does not (it keeps the forking parent's RSS, here the big speed-run process), so it is
 * only the fallback elsewhere.
 */
export function peakRss() {
  try {
    const kb = /VmHWM:\s*(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (kb) return Number(kb[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Raw and gzip -9 bytes of each file (path or { label, bytes }), added up: each file compressed on its own, as a server sends it. */
export function sizes(files) {
  let raw = 0;
  let gzip = 0;
  for (const f of files) {
    const bytes = typeof f === 'string' ? readFileSync(f) : f.bytes;
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }).length;
  }
  const label = (f) => (typeof f !== 'string' ? f.label : f.includes('node_modules/') ? f.slice(f.lastIndexOf('node_modules/') + 13) : relative(ROOT, f));
  return { runtime_bytes: raw, runtime_gzip_bytes: gzip, files: files.map(label) };
}

/** dist/index.js and all it imports as one minified ES module: what a page's bundler ships. */
export async function minifiedBundle() {
  const { rolldown } = await import('rolldown'); // only here: a child process measuring memory never loads it
  const bundle = await rolldown({ input: join(DIST, 'index.js'), platform: 'browser', logLevel: 'silent' });
  const { output } = await bundle.generate({ format: 'esm', minify: true });
  return { label: 'dist/index.js bundled and minified', bytes: Buffer.from(output[0].code) };
}

/** What a browser fetches to run our `build`: its .wasm and the package's JS bundled and minified; null when not built. */
export async function ourRuntime(build) {
  const wasm = join(DIST, `wasmformer.${build}.wasm`);
  if (!existsSync(wasm) || !existsSync(join(DIST, 'index.js'))) return null;
  return sizes([wasm, await minifiedBundle()]);
}
