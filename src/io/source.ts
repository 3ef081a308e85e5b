import { WasmformerError, type ErrorCode } from '../errors.js';
import { isNode, nodeModule, toUrl } from '../platform.js';
import { describe } from './describe.js';

/** The two files of a model, by name inside its folder. */
export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
/** The weights files a folder may hold, the first found read: safetensors, then PyTorch's own (torch.save). */
export const WEIGHTS_FILES = [WEIGHTS_FILE, 'pytorch_model.bin', 'model.bin', 'model.pt', 'model.pth'];
/** generate()'s defaults beside a Hugging Face model's config.json. */
export const GENERATION_FILE = 'generation_config.json';

/** A model already in memory: config.json's object (or text), model.safetensors' bytes, and generation_config.json's when there is one. */
export interface ModelBytes {
  config: object | string;
  weights: ArrayBuffer | Uint8Array;
  generationConfig?: object | string;
}

/**
 * A model whose files each have their own path or URL, by file name (`config.json`,
 * `model.safetensors`, `tokenizer.json`): what a bundler makes of a folder, one asset per file.
 */
export interface ModelFileUrls {
  files: Readonly<Record<string, string | URL>>;
}

/** A folder path (Node), a URL of the folder (http(s), file; relative in a browser), its files' URLs, or bytes. */
export type ModelSource = string | URL | ModelFileUrls | ModelBytes;

export interface ReadOptions {
  /**
   * Called as model.safetensors arrives, with bytes so far and the total (Content-Length, or 0
   * while unknown). The last call always has loadedBytes === totalBytes === the file's size
   * (once only from a file or bytes; after a download of unknown size it repeats the count).
   */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
  /** config.json as the caller already read it (readModelConfig), so that it is not fetched again. */
  config?: FileContents<unknown>;
}

/**
 * A look at a file's first bytes before the rest is read: given the bytes so far, the file's
 * size (null while unknown) and its name for errors, returns how many bytes it needs to decide (at most what it has: it
 * has decided), or throws. So a wrong file fails after its header, not after a long download.
 */
export type HeadCheck = (head: Uint8Array, size: number | null, file: string) => number;

export interface ReadFileOptions extends ReadOptions {
  head?: HeadCheck;
}

/** A file's contents (text, bytes, or the object given in memory) and the name errors give it. */
export interface FileContents<T> {
  readonly data: T;
  readonly file: string;
}

/** config.json's text, or the object or text given in memory. A file that cannot be read is BAD_CONFIG. */
export async function readModelConfig(source: ModelSource): Promise<FileContents<unknown>> {
  if (isModelBytes(source)) return { data: source.config, file: 'config' };
  const { bytes, file } = await readModelFile(source, CONFIG_FILE, 'BAD_CONFIG', { head: jsonHead });
  return { data: new TextDecoder().decode(bytes), file };
}

/** Config files are small: one of more than this is something else, refused before it is read whole. */
const MAX_JSON_BYTES = 16 << 20;

/** The head check of a JSON config file: refuses it as soon as it is known to be too large. */
export const jsonHead: HeadCheck = (head, size, file) => {
  if ((size ?? head.length) > MAX_JSON_BYTES) {
    const bytes = size === null ? `more than ${MAX_JSON_BYTES}` : String(size);
    throw new WasmformerError('BAD_CONFIG', `${file}: ${bytes} bytes is too large for a JSON config file`);
  }
  return MAX_JSON_BYTES + 1;
};

/** generation_config.json's text (or the object given in memory), or null when the folder has none. */
export async function readGenerationConfig(source: ModelSource): Promise<FileContents<unknown> | null> {
  if (isModelBytes(source)) return source.generationConfig === undefined ? null : { data: source.generationConfig, file: 'generationConfig' };
  const found = await readOptionalModelFile(source, GENERATION_FILE, 'BAD_CONFIG', { head: jsonHead });
  return found === null ? null : { data: new TextDecoder().decode(found.bytes), file: found.file };
}

/** readModelFile, or null when the folder (or file map) has no such file. */
export async function readOptionalModelFile(
  source: string | URL | ModelFileUrls, name: string, code: ErrorCode, options: ReadFileOptions = {},
): Promise<{ bytes: Uint8Array; file: string } | null> {
  if (typeof source === 'object' && !(source instanceof URL) && !Object.hasOwn(source.files, name)) return null;
  const location = await locate(source, name);
  const bytes = await readOptionalFile(location, code, options);
  return bytes === null ? null : { bytes, file: String(location) };
}

/**
 * model.safetensors' bytes, `head` looking at its header before the rest is read. A file that
 * cannot be read is BAD_FILE naming its path or URL.
 */
export async function readModelWeights(source: ModelSource, options: ReadFileOptions = {}): Promise<FileContents<Uint8Array>> {
  if (!isModelBytes(source)) return readWeightsFile(source, options);
  const w = source.weights;
  if (!(w instanceof Uint8Array || w instanceof ArrayBuffer)) {
    throw new WasmformerError('BAD_ARGUMENT', `source.weights must be an ArrayBuffer or a Uint8Array, got ${describe(w)}`);
  }
  const weights = w instanceof Uint8Array ? w : new Uint8Array(w);
  options.head?.(weights, weights.length, 'weights');
  options.onProgress?.(weights.length, weights.length);
  return { data: weights, file: 'weights' };
}

/**
 * The first of WEIGHTS_FILES the folder (or file map) has: safetensors, else PyTorch's own
 * files. A folder with none of them is BAD_FILE naming the first and listing the others.
 */
async function readWeightsFile(source: string | URL | ModelFileUrls, options: ReadFileOptions): Promise<FileContents<Uint8Array>> {
  const others = `(nor ${WEIGHTS_FILES.slice(1).join(', ')})`;
  if (typeof source === 'object' && !(source instanceof URL)) {
    const name = WEIGHTS_FILES.find((n) => Object.hasOwn(source.files, n));
    if (name === undefined) throw new WasmformerError('BAD_ARGUMENT', `source.files has no ${WEIGHTS_FILE} ${others}`);
    const { bytes, file } = await readModelFile(source, name, 'BAD_FILE', options);
    return { data: bytes, file };
  }
  for (const name of WEIGHTS_FILES) {
    const location = await locate(source, name);
    const bytes = await readOptionalFile(location, 'BAD_FILE', options);
    if (bytes !== null) return { data: bytes, file: String(location) };
  }
  const first = await locate(source, WEIGHTS_FILE);
  throw new WasmformerError('BAD_FILE', `${String(first)}: file not found ${others}`);
}

/** Whether a source holds its files in memory ({ config, weights, ... }) rather than naming them. */
export function isModelBytes(source: unknown): source is ModelBytes {
  checkSource(source);
  return typeof source === 'object' && !(source instanceof URL) && !('files' in source);
}

/**
 * Reads the file `name` of a model folder (a path, or a URL: file: in Node, fetched otherwise)
 * or of a map of file URLs. A file that cannot be read is an error with `code`, naming its path
 * or URL.
 */
export async function readModelFile(
  source: string | URL | ModelFileUrls, name: string, code: ErrorCode, options: ReadFileOptions = {},
): Promise<{ bytes: Uint8Array; file: string }> {
  const location = await locate(source, name);
  return { bytes: await readFile(location, code, options), file: String(location) };
}

/** Where file `name` of a folder or a file map is. */
async function locate(source: string | URL | ModelFileUrls, name: string): Promise<string | URL> {
  if (typeof source === 'object' && !(source instanceof URL)) {
    const location = Object.hasOwn(source.files, name) ? source.files[name] : undefined;
    if (typeof location !== 'string' && !(location instanceof URL)) {
      throw new WasmformerError('BAD_ARGUMENT', `source.files[${JSON.stringify(name)}] must be a path or a URL, got ${describe(location)}`);
    }
    return location;
  }
  const url = typeof source === 'string' ? toUrl(source) : source;
  if (url !== null) return childUrl(url, name);
  const path = await nodeModule<typeof import('node:path')>('node:path');
  return path.join(source as string, name);
}

function checkSource(source: unknown): asserts source is ModelSource {
  const ok = typeof source === 'string' ? source !== '' : source instanceof URL ||
    (typeof source === 'object' && source !== null &&
      (('files' in source && typeof source.files === 'object' && source.files !== null) || ('config' in source && 'weights' in source)));
  if (!ok) {
    throw new WasmformerError('BAD_ARGUMENT', 'a model source is a folder path, a URL, { files: { name: URL } }, ' +
      `or { config: object | string, weights: ArrayBuffer | Uint8Array }; got ${describe(source)}`);
  }
}

/**
 * The one reader of files: a path or a file: URL from the file system (Node), any other URL
 * with fetch. `head` sees the first bytes before the rest is read; `onProgress` sees each
 * chunk. A file that cannot be read is an error with `code` naming it.
 */
export async function readFile(location: string | URL, code: ErrorCode, options: ReadFileOptions = {}): Promise<Uint8Array> {
  return (await read(location, code, options, false))!;
}

/** readFile, or null when there is no such file (ENOENT, HTTP 404): for the files a folder may lack. */
export function readOptionalFile(location: string | URL, code: ErrorCode, options: ReadFileOptions = {}): Promise<Uint8Array | null> {
  return read(location, code, options, true);
}

async function read(location: string | URL, code: ErrorCode, options: ReadFileOptions, optional: boolean): Promise<Uint8Array | null> {
  const url = typeof location === 'string' ? toUrl(location) : location;
  const fail = (reason: string): never => {
    throw new WasmformerError(code, `${String(location)}: ${reason}`);
  };
  const collect = (size: number | null) => new Collector(size, String(location), options, fail);
  if (url === null || (url.protocol === 'file:' && isNode())) return readLocal(url ?? location, collect, fail, optional);
  return download(url, collect, fail, optional);
}

/** Bytes gathered chunk by chunk into one buffer, with the head check and progress calls. */
class Collector {
  private buffer: Uint8Array;
  private loaded = 0;
  private needed = 0; // bytes the head check asked for before it can decide; -1: it decided

  constructor(
    private readonly size: number | null,
    private readonly file: string,
    private readonly options: ReadFileOptions,
    private readonly fail: (reason: string) => never,
  ) {
    this.buffer = this.allocate(size ?? 1 << 20);
    if (options.head === undefined) this.needed = -1;
  }

  push(chunk: Uint8Array): void {
    if (this.loaded + chunk.length > this.buffer.length) {
      const grown = this.allocate(Math.max(2 * this.buffer.length, this.loaded + chunk.length));
      grown.set(this.buffer.subarray(0, this.loaded));
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.loaded);
    this.loaded += chunk.length;
    this.checkHead();
    if (this.loaded !== this.size) this.options.onProgress?.(this.loaded, this.size ?? 0);
  }

  finish(): Uint8Array {
    const bytes = this.loaded === this.buffer.length ? this.buffer : this.buffer.slice(0, this.loaded);
    // A file shorter than its head check wanted: the check decides on what there is.
    if (this.needed >= 0) this.options.head!(bytes, bytes.length, this.file);
    this.options.onProgress?.(this.loaded, this.loaded);
    return bytes;
  }

  private checkHead(): void {
    if (this.needed < 0 || this.loaded < this.needed) return;
    const head = this.buffer.subarray(0, this.loaded);
    const needed = this.options.head!(head, this.size, this.file);
    this.needed = needed > this.loaded ? needed : -1;
  }

  private allocate(n: number): Uint8Array {
    try {
      return new Uint8Array(n);
    } catch {
      return this.fail(`${n} bytes do not fit in memory`);
    }
  }
}

const CHUNK = 1 << 22;

type Collect = (size: number | null) => Collector;

async function readLocal(file: string | URL, collect: Collect, fail: (reason: string) => never, optional: boolean): Promise<Uint8Array | null> {
  const fs = await nodeModule<typeof import('node:fs/promises')>('node:fs/promises');
  const failed = (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot read (${errorText(e)})`);
  };
  const handle = await fs.open(file, 'r').catch((e: unknown) => ((e as NodeJS.ErrnoException).code === 'ENOENT' && optional ? null : failed(e)));
  if (handle === null) return null;
  try {
    const size = (await handle.stat().catch(failed)).size;
    const collector = collect(size);
    const chunk = new Uint8Array(Math.min(CHUNK, Math.max(size, 1)));
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null).catch(failed);
      if (bytesRead === 0) break;
      collector.push(chunk.subarray(0, bytesRead));
    }
    return collector.finish();
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** `<dir>/<name>`, whether or not dir ends with a slash. */
function childUrl(dir: URL, name: string): URL {
  const base = new URL(dir);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL(name, base);
}

/** Fetches a URL chunk by chunk; failures name the URL, and leaving early releases the connection. */
async function download(url: URL, collect: Collect, fail: (reason: string) => never, optional: boolean): Promise<Uint8Array | null> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    return fail(`fetch failed (${errorText(e)})`);
  }
  if (response.status === 404 && optional) {
    void response.body?.cancel().catch(() => undefined);
    return null;
  }
  if (!response.ok) fail(`HTTP ${response.status} ${response.statusText}`);
  // Content-Length counts the encoded bytes: with gzip it is not the size that streams out.
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const length = Number(response.headers.get('content-length') ?? NaN);
  const collector = collect(!encoded && Number.isSafeInteger(length) && length >= 0 ? length : null);
  const reader = response.body?.getReader();
  let done = reader === undefined;
  try {
    while (!done) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader!.read();
      } catch (e) {
        return fail(`download failed (${errorText(e)})`);
      }
      if (chunk.done) done = true;
      else collector.push(chunk.value);
    }
  } finally {
    // Left early (a failed read, a head check or callback that threw): release the connection.
    if (!done) void reader!.cancel().catch(() => undefined);
  }
  return collector.finish();
}

function errorText(e: unknown): string {
  const err = e as { message?: unknown; cause?: { message?: unknown } };
  return String(err?.cause?.message ?? err?.message ?? e);
}
