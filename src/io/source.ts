import { WasmformerError, type ErrorCode } from '../errors.js';
import { isNode, nodeModule, toUrl } from '../runtime/wasm.js';

/** The two files of a model, by name inside its folder. */
export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';

/** A model already in memory: config.json's object (or text) and model.safetensors' bytes. */
export interface ModelBytes {
  config: object | string;
  weights: ArrayBuffer | Uint8Array;
}

/** A folder path (Node), a URL of the folder (http(s), file; relative in a browser), or bytes. */
export type ModelSource = string | URL | ModelBytes;

export interface ReadOptions {
  /**
   * Called as model.safetensors arrives, with bytes so far and the total (Content-Length, or 0
   * while unknown). The last call always has loadedBytes === totalBytes === the file's size
   * (once only from a file or bytes; after a download of unknown size it repeats the count).
   */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
}

/** The raw contents of a model's two files, and the names that error messages give them. */
export interface ModelFiles {
  /** config.json's text, or the object given as bytes source. */
  config: unknown;
  configFile: string;
  weights: Uint8Array;
  weightsFile: string;
}

/**
 * Reads config.json and then model.safetensors (so a bad folder fails before a large download).
 * A file that cannot be read is an error naming its path or URL: BAD_CONFIG for config.json,
 * BAD_FILE for model.safetensors. Nothing is parsed here.
 */
export async function readModelFiles(source: ModelSource, options: ReadOptions = {}): Promise<ModelFiles> {
  if (typeof source !== 'string' && !(source instanceof URL)) return fromMemory(source, options);
  const config = await readModelFile(source, CONFIG_FILE, 'BAD_CONFIG');
  const weights = await readModelFile(source, WEIGHTS_FILE, 'BAD_FILE', options.onProgress);
  return { config: new TextDecoder().decode(config.bytes), configFile: config.file, weights: weights.bytes, weightsFile: weights.file };
}

/**
 * Reads the file `name` of a model folder (a path, or a URL: file: in Node, fetched otherwise).
 * A file that cannot be read is an error with `code`, naming its path or URL.
 */
export async function readModelFile(
  folder: string | URL, name: string, code: ErrorCode, onProgress?: ReadOptions['onProgress'],
): Promise<{ bytes: Uint8Array; file: string }> {
  const url = typeof folder === 'string' ? toUrl(folder) : folder;
  if (url !== null && !(url.protocol === 'file:' && isNode())) {
    const file = childUrl(url, name);
    return { bytes: await download(file, code, onProgress), file: String(file) };
  }
  const path = await nodeModule<typeof import('node:path')>('node:path');
  const file = url === null ? path.join(folder as string, name) : childUrl(url, name);
  const bytes = await readFile(file, code);
  onProgress?.(bytes.length, bytes.length);
  return { bytes, file: String(file) };
}

function fromMemory(source: ModelBytes, options: ReadOptions): ModelFiles {
  const bad = (): never => {
    throw new WasmformerError('BAD_ARGUMENT',
      'a model source is a folder path, a URL, or { config: object | string, weights: ArrayBuffer | Uint8Array }');
  };
  if (typeof source !== 'object' || source === null || !('config' in source) || !('weights' in source)) bad();
  const w = source.weights;
  const weights = w instanceof Uint8Array ? w : w instanceof ArrayBuffer ? new Uint8Array(w) : bad();
  options.onProgress?.(weights.length, weights.length);
  return { config: source.config, configFile: 'config', weights, weightsFile: 'weights' };
}

async function readFile(file: string | URL, code: ErrorCode): Promise<Uint8Array> {
  const fs = await nodeModule<typeof import('node:fs/promises')>('node:fs/promises');
  try {
    const buffer = await fs.readFile(file);
    // A plain Uint8Array over the same memory: Buffer's slice() shares, Uint8Array's copies.
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `cannot read (${(e as Error).message})`;
    throw new WasmformerError(code, `${String(file)}: ${reason}`);
  }
}

/** `<dir>/<name>`, whether or not dir ends with a slash. */
function childUrl(dir: URL, name: string): URL {
  const base = new URL(dir);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL(name, base);
}

/** Fetches a URL into one buffer, reporting progress per chunk; failures name the URL. */
async function download(url: URL, code: ErrorCode, onProgress: ReadOptions['onProgress']): Promise<Uint8Array> {
  const fail = (reason: string): never => {
    throw new WasmformerError(code, `${url}: ${reason}`);
  };
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    return fail(`fetch failed (${errorText(e)})`);
  }
  if (!response.ok) fail(`HTTP ${response.status} ${response.statusText}`);
  // Content-Length counts the encoded bytes: with gzip it is not the size that streams out.
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const length = Number(response.headers.get('content-length') ?? 0);
  const total = !encoded && Number.isSafeInteger(length) && length > 0 ? length : 0;
  let buffer = allocate(total > 0 ? total : 1 << 20, fail);
  let loaded = 0;
  const reader = response.body?.getReader();
  let done = reader === undefined;
  try {
    while (!done) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader!.read();
      } catch (e) {
        return fail(`download failed after ${loaded} bytes (${errorText(e)})`);
      }
      if (chunk.done) {
        done = true;
        break;
      }
      if (loaded + chunk.value.length > buffer.length) {
        const grown = allocate(Math.max(2 * buffer.length, loaded + chunk.value.length), fail);
        grown.set(buffer.subarray(0, loaded));
        buffer = grown;
      }
      buffer.set(chunk.value, loaded);
      loaded += chunk.value.length;
      if (loaded !== total) onProgress?.(loaded, total);
    }
  } finally {
    // Left early (a failed read, a throwing callback): release the connection.
    if (!done) void reader!.cancel().catch(() => undefined);
  }
  onProgress?.(loaded, loaded);
  return loaded === buffer.length ? buffer : buffer.slice(0, loaded);
}

function allocate(n: number, fail: (reason: string) => never): Uint8Array {
  try {
    return new Uint8Array(n);
  } catch {
    return fail(`${n} bytes do not fit in memory`);
  }
}

function errorText(e: unknown): string {
  const err = e as { message?: unknown; cause?: { message?: unknown } };
  return String(err?.cause?.message ?? err?.message ?? e);
}
