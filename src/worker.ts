// wasmformer/worker: a Translator whose model lives in a worker (a Web Worker in a browser,
// worker_threads in Node), so that decoding never blocks the page. The page and the worker talk
// with messages: the page sends a text, the worker streams back tokens, a call can be cancelled.
import { WasmformerError, type ErrorCode } from './errors.js';
import type { ModelConfig } from './families/index.js';
import { describe } from './io/describe.js';
import { isModelBytes } from './io/source.js';
import { AttentionMaps, type AttentionStep } from './model/attention-maps.js';
import { LOAD_OPTIONS, type LoadOptions } from './model/load.js';
import { GENERATE_OPTIONS, type GenerateOptions } from './generate/index.js';
import { checkOptions } from './options.js';
import { isNode, nodeModule, toUrl } from './platform.js';
import type { Build } from './runtime/index.js';
import type { TranslatorSource } from './translator.js';

/** An error as it crosses the worker boundary. */
export interface WireError {
  name: string;
  code?: ErrorCode;
  message: string;
}

/** The messages the page sends. */
export type ToWorker =
  | { type: 'load'; source: TranslatorSource; options: Omit<LoadOptions, 'onProgress'> }
  | { type: 'translate'; id: number; text: string | string[]; options: WireOptions; stream: boolean }
  | { type: 'tokenize'; id: number; text: string }
  | { type: 'cancel'; id: number };

/** A call's options as they cross to the worker: the functions and objects stay on the page. */
export type WireOptions = Omit<GenerateOptions, 'onToken' | 'attention' | 'signal'> & { attention: boolean };

/** The messages the worker sends. */
export type FromWorker =
  | { type: 'progress'; loaded: number; total: number }
  | { type: 'ready'; config: ModelConfig; parameters: number; build: Build; dtype: 'f32' | 'q8'; memoryBytes: number } & Threads
  | { type: 'failed'; error: WireError }
  | { type: 'token'; id: number; token: number; index: number; hypothesis: number[]; sentence: number; piece: string; attention?: AttentionStep[] }
  | { type: 'tokens'; id: number; ids: number[]; pieces: string[] }
  | { type: 'done'; id: number; text: string | string[]; attention?: AttentionStep[] } & Threads
  | { type: 'error'; id: number; error: WireError };

/** The model's threads as the worker last saw them (model.threads, model.threadsReason). */
export interface Threads {
  threads: number;
  threadsReason: string | null;
}

/** The worker as the page sees it, the same in a browser and in Node. */
interface Channel {
  post(message: ToWorker): void;
  listen(onMessage: (message: FromWorker) => void, onError: (message: string) => void): void;
  /** Whether it may keep a Node process alive (only while a call waits for it). */
  hold(busy: boolean): void;
  /** Ends the worker (and the helper threads it started); resolves once it has exited. */
  terminate(): Promise<void>;
}

// Named by a constant, not a literal: bundlers treat new URL('literal', import.meta.url) as an
// asset, and the browser's Worker constructor below is the one they must bundle.
const NODE_ENTRY = './worker-entry.js';

async function startWorker(): Promise<Channel> {
  if (!isNode()) {
    const worker = new Worker(new URL('./worker-entry.js', import.meta.url), { type: 'module' });
    return {
      post: (message) => worker.postMessage(message),
      listen: (onMessage, onError) => {
        worker.onmessage = (e) => onMessage(e.data as FromWorker);
        worker.onerror = (e) => onError(e.message || 'the worker script failed to start');
      },
      hold: () => undefined,
      terminate: async () => worker.terminate(),
    };
  }
  const threads = await nodeModule<typeof import('node:worker_threads')>('node:worker_threads');
  const worker = new threads.Worker(new URL(NODE_ENTRY, import.meta.url));
  return {
    post: (message) => worker.postMessage(message),
    listen: (onMessage, onError) => {
      worker.on('message', onMessage);
      worker.on('error', (e) => onError(e.message));
    },
    hold: (busy) => (busy ? worker.ref() : worker.unref()),
    terminate: async () => void (await worker.terminate()),
  };
}

/** A call in flight: how its messages reach the caller. */
interface Call {
  onToken(m: Extract<FromWorker, { type: 'token' }>): void;
  maps: AttentionMaps | null;
  begun: boolean; // whether maps has begun this call's recording
  resolve(result: string | string[] | { ids: number[]; pieces: string[] }): void;
  reject(error: unknown): void;
}

/**
 * A Translator whose model lives in a worker: `translate` and `stream` as Translator's, with
 * `signal` to cancel. Calls queue in the worker; `dispose()` ends the worker.
 */
export class WorkerTranslator {
  readonly config: ModelConfig;
  readonly parameters: number;
  readonly build: Build;
  readonly dtype: 'f32' | 'q8';
  readonly memoryBytes: number;
  /** Threads running the model's kernels in the worker (loadModel's `threads`), as of the last call's end. */
  threads: number;
  /** Why fewer threads run than were asked for; null when as asked. */
  threadsReason: string | null;
  private channel: Channel | null;
  private readonly calls = new Map<number, Call>();
  private nextId = 0;

  private constructor(channel: Channel, ready: Extract<FromWorker, { type: 'ready' }>) {
    this.channel = channel;
    this.config = Object.freeze(ready.config);
    this.parameters = ready.parameters;
    this.build = ready.build;
    this.dtype = ready.dtype;
    this.memoryBytes = ready.memoryBytes;
    this.threads = ready.threads;
    this.threadsReason = ready.threadsReason;
    channel.listen((m) => this.receive(m), (message) => this.fail(message));
  }

  /** Starts a worker, loads the translator there, and resolves once it is ready. */
  static async create(source: TranslatorSource, options: LoadOptions = {}): Promise<WorkerTranslator> {
    checkOptions(options, LOAD_OPTIONS);
    const { onProgress, ...rest } = options;
    const message: ToWorker = { type: 'load', source: portable(source), options: { ...rest, wasm: portableWasm(rest.wasm) } };
    const channel = await startWorker();
    channel.hold(true);
    const ready = await new Promise<Extract<FromWorker, { type: 'ready' }>>((resolve, reject) => {
      channel.listen((m) => {
        if (m.type === 'progress') onProgress?.(m.loaded, m.total);
        else if (m.type === 'ready') resolve(m);
        else if (m.type === 'failed') reject(fromWire(m.error));
      }, (text) => reject(new WasmformerError('BAD_FILE', `the wasmformer worker failed: ${text}`)));
      channel.post(message);
    }).catch((e: unknown) => {
      channel.terminate();
      throw e;
    });
    channel.hold(false);
    return new WorkerTranslator(channel, ready);
  }

  /** Translator.translate in the worker: a text or a list of texts, by the model's generation config unless the options say otherwise. */
  translate(text: string, options?: GenerateOptions): Promise<string>;
  translate(texts: readonly string[], options?: GenerateOptions): Promise<string[]>;
  translate(text: string | readonly string[], options: GenerateOptions = {}): Promise<string | string[]> {
    const onToken = options.onToken;
    return this.call(text, options, false, (m) => onToken?.(m.token, m.index, m.hypothesis, m.sentence)) as Promise<string | string[]>;
  }

  /** The source ids of a text and its tokens as the encoder sees them (to label them), from the worker's tokenizer. */
  tokenize(text: string): Promise<{ ids: number[]; pieces: string[] }> {
    return this.call(text, {}, false, () => undefined, 'tokenize') as Promise<{ ids: number[]; pieces: string[] }>;
  }

  /** Translator.stream in the worker: the translation as it is produced (greedily), its pieces as Translator.stream gives them. */
  async *stream(text: string, options: GenerateOptions = {}): AsyncGenerator<string> {
    const pieces: string[] = [];
    let given = 0; // characters of the pieces
    let wake: (() => void) | null = null;
    let finished = false;
    const controller = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
    const done = this.call(text, { ...options, signal }, true, (m) => {
      options.onToken?.(m.token, m.index, m.hypothesis, m.sentence);
      if (m.piece !== '') pieces.push(m.piece);
      given += m.piece.length;
      wake?.();
    }).finally(() => {
      finished = true;
      wake?.();
    });
    done.catch(() => undefined); // seen below, once the pieces before it are out
    try {
      for (;;) {
        if (pieces.length > 0) yield pieces.shift()!;
        else if (finished) break;
        else await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
      // The whole text's end that the pieces held back (TextStream.flush) comes with the result.
      const rest = ((await done) as string).slice(given);
      if (rest !== '') yield rest;
    } finally {
      if (!finished) controller.abort(); // the caller left early: stop the worker's decoding
    }
  }

  /** Ends the worker and its threads; calls still waiting reject with a DISPOSED error. Resolves once the worker has exited. */
  dispose(): Promise<void> {
    return this.fail(null);
  }

  private call(text: string | readonly string[], options: GenerateOptions, stream: boolean, onToken: Call['onToken'], type: 'translate' | 'tokenize' = 'translate'): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.channel === null) throw new WasmformerError('DISPOSED', 'this translator was disposed');
      checkOptions(options, GENERATE_OPTIONS);
      checkTexts(text, type === 'translate' && !stream);
      const { signal, attention, onToken: _, ...rest } = options;
      signal?.throwIfAborted();
      const id = this.nextId++;
      const settle = (): void => {
        this.calls.delete(id);
        signal?.removeEventListener('abort', abort);
        if (this.calls.size === 0) this.channel?.hold(false);
      };
      const abort = (): void => {
        this.channel?.post({ type: 'cancel', id });
        settle();
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', abort, { once: true });
      this.calls.set(id, {
        onToken,
        maps: attention ?? null,
        begun: false,
        resolve: (result) => {
          settle();
          resolve(result);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      this.channel.hold(true);
      if (type === 'tokenize') this.channel.post({ type, id, text: text as string });
      else this.channel.post({ type, id, text: Array.isArray(text) ? [...text] : (text as string), stream, options: { ...rest, attention: attention !== undefined } });
    });
  }

  private receive(m: FromWorker): void {
    if (m.type !== 'token' && m.type !== 'done' && m.type !== 'tokens' && m.type !== 'error') return;
    const call = this.calls.get(m.id);
    if (call === undefined) return; // a call cancelled here, still finishing there
    if (m.type === 'error') return call.reject(fromWire(m.error));
    if (m.type === 'tokens') return call.resolve({ ids: m.ids, pieces: m.pieces });
    for (const step of m.attention ?? []) this.addStep(call, step);
    if (m.type === 'token') return call.onToken(m);
    this.threads = m.threads;
    this.threadsReason = m.threadsReason;
    call.resolve(m.text);
  }

  /** One attention step from the worker; the first one begins the maps (its cross weights say the source's length). */
  private addStep(call: Call, step: AttentionStep): void {
    const maps = call.maps;
    if (maps === null) return;
    if (!call.begun) maps.begin(this.config, step.cross.length / (this.config.numDecoderLayers * this.config.decoderHeads));
    call.begun = true;
    maps.addStep(step);
  }

  /** Ends the worker: every waiting call rejects (DISPOSED, or the worker's failure). */
  private fail(reason: string | null): Promise<void> {
    const ended = this.channel?.terminate() ?? Promise.resolve();
    this.channel = null;
    const error = reason === null
      ? new WasmformerError('DISPOSED', 'this translator was disposed')
      : new WasmformerError('BAD_FILE', `the wasmformer worker failed: ${reason}`);
    for (const call of [...this.calls.values()]) call.reject(error);
    return ended;
  }
}

/** Loads a translator into a worker of its own: `await createWorkerTranslator('/models/numbers/')`. */
export function createWorkerTranslator(source: TranslatorSource, options: LoadOptions = {}): Promise<WorkerTranslator> {
  return WorkerTranslator.create(source, options);
}

/**
 * A source as the worker can receive it: URLs as absolute strings (a relative path means the
 * page's location, not the worker script's), bytes as they are (structured clone copies them).
 */
function portable(source: TranslatorSource): TranslatorSource {
  if (isModelBytes(source)) return source;
  if (typeof source === 'object' && !(source instanceof URL)) {
    return { files: Object.fromEntries(Object.entries(source.files).map(([name, at]) => [name, absolute(at)])) };
  }
  return absolute(source);
}

function portableWasm(wasm: LoadOptions['wasm']): LoadOptions['wasm'] {
  return typeof wasm === 'string' || wasm instanceof URL ? absolute(wasm) : wasm;
}

function absolute(location: string | URL): string {
  return typeof location === 'string' ? String(toUrl(location) ?? location) : location.href;
}

/** A text (or, where lists are allowed, a list of texts): anything else is a BAD_ARGUMENT error here, before the worker sees it. */
function checkTexts(text: unknown, lists: boolean): void {
  if (lists && Array.isArray(text)) {
    text.forEach((t, i) => {
      if (typeof t !== 'string') throw new WasmformerError('BAD_ARGUMENT', `texts[${i}] must be a string, got ${describe(t)}`);
    });
  } else if (typeof text !== 'string') {
    throw new WasmformerError('BAD_ARGUMENT', `text must be a string, got ${describe(text)}`);
  }
}

/** An error from the worker as the page's own: WasmformerError by code, AbortError as a DOMException. */
function fromWire(e: WireError): Error {
  if (e.code !== undefined) return new WasmformerError(e.code, e.message);
  if (e.name === 'AbortError') return new DOMException(e.message, 'AbortError');
  const error = new Error(e.message);
  error.name = e.name;
  return error;
}
