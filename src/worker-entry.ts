// The script that runs inside the worker of createWorkerTranslator (a Web Worker in a browser,
// a worker_threads Worker in Node): it holds the model and answers the page's messages.
import { WasmformerError } from './errors.js';
import type { GenerateOptions } from './generate/index.js';
import { AttentionMaps, type AttentionStep } from './model/attention-maps.js';
import { isNode, nodeModule } from './platform.js';
import { loadTranslator, TextStream, type Translator } from './translator.js';
import type { FromWorker, ToWorker, WireError } from './worker.js';

interface Port {
  post(message: FromWorker, transfer?: Transferable[]): void;
  listen(handler: (message: ToWorker) => void): void;
}

async function nodePort(): Promise<Port> {
  const { parentPort } = await nodeModule<typeof import('node:worker_threads')>('node:worker_threads');
  if (parentPort === null) throw new Error('wasmformer/worker-entry runs in a worker, not on its own');
  return {
    post: (message, transfer) => parentPort.postMessage(message, transfer as never),
    listen: (handler) => parentPort.on('message', handler), // messages wait for the listener
  };
}

function webPort(): Port {
  const scope = globalThis as unknown as { postMessage(m: unknown, t?: Transferable[]): void; addEventListener(type: 'message', f: (e: MessageEvent) => void): void };
  return {
    post: (message, transfer) => scope.postMessage(message, transfer ?? []),
    listen: (handler) => scope.addEventListener('message', (e) => handler(e.data as ToWorker)),
  };
}

/** What crosses back to the page: the error's kind, code and message (not its stack). */
function wire(e: unknown): WireError {
  if (e instanceof WasmformerError) return { name: e.name, code: e.code, message: e.message };
  const err = e as { name?: unknown; message?: unknown };
  return { name: typeof err?.name === 'string' ? err.name : 'Error', message: String(err?.message ?? e) };
}

let post: Port['post'] = () => undefined;
let translator: Translator | null = null;
/** The calls running or queued, by id, so that a cancel message can reach them. */
const calls = new Map<number, AbortController>();

// No top-level await: bundlers build workers as classic scripts too. A Web Worker's listener is
// added in this first task, before any message is dispatched.
void (isNode() ? nodePort() : Promise.resolve(webPort())).then((port) => {
  post = port.post;
  port.listen(receive);
});

function receive(message: ToWorker): void {
  switch (message.type) {
    case 'load':
      void load(message);
      break;
    case 'translate':
      void translate(message);
      break;
    case 'tokenize':
      tokenize(message);
      break;
    case 'cancel':
      calls.get(message.id)?.abort();
      break;
  }
}

async function load({ source, options }: Extract<ToWorker, { type: 'load' }>): Promise<void> {
  try {
    const onProgress = (loaded: number, total: number): void => post({ type: 'progress', loaded, total });
    translator = await loadTranslator(source, { ...options, onProgress });
    const { config, parameters, build, dtype, memoryBytes, threads, threadsReason } = translator.model;
    post({ type: 'ready', config, parameters, build, dtype, memoryBytes, threads, threadsReason });
  } catch (e) {
    post({ type: 'failed', error: wire(e) });
  }
}

async function translate({ id, text, options, stream }: Extract<ToWorker, { type: 'translate' }>): Promise<void> {
  const controller = new AbortController();
  calls.set(id, controller);
  const maps = options.attention ? new AttentionMaps() : undefined;
  let sent = 0; // attention steps sent so far
  // The steps recorded since the last message, moved (not copied) into the next one.
  const attention = (): { attention?: AttentionStep[]; transfer: ArrayBuffer[] } => {
    if (!maps) return { transfer: [] };
    const steps = maps.stepsFrom(sent);
    sent += steps.length;
    return { attention: steps, transfer: steps.flatMap((s) => [s.cross.buffer as ArrayBuffer, s.self.buffer as ArrayBuffer]) };
  };
  try {
    const pieces = new TextStream(translator!.tokenizer);
    const onToken = (token: number, index: number, hypothesis: readonly number[], sentence: number): void => {
      const { attention: steps, transfer } = attention();
      const piece = stream ? pieces.push(token) : '';
      post({ type: 'token', id, token, index, hypothesis: [...hypothesis], sentence, piece, attention: steps }, transfer);
    };
    const { attention: _, ...rest } = options;
    const generate = { ...rest, onToken, attention: maps, signal: controller.signal };
    const result = stream
      ? await streamed(text as string, generate)
      : await translator!.translate(text as string & string[], generate); // either overload: a text or a list
    const { attention: steps, transfer } = attention(); // the step that produced eos
    const { threads, threadsReason } = translator!.model;
    post({ type: 'done', id, text: result, attention: steps, threads, threadsReason }, transfer);
  } catch (e) {
    post({ type: 'error', id, error: wire(e) });
  } finally {
    calls.delete(id);
  }
}

/** Translator.stream run to its end: the whole translation (its pieces went out through onToken). */
async function streamed(text: string, options: GenerateOptions): Promise<string> {
  let whole = '';
  for await (const piece of translator!.stream(text, options)) whole += piece;
  return whole;
}

function tokenize({ id, text }: Extract<ToWorker, { type: 'tokenize' }>): void {
  try {
    const { tokenizer } = translator!;
    post({ type: 'tokens', id, ids: tokenizer.encode(text), pieces: tokenizer.tokenize(text) });
  } catch (e) {
    post({ type: 'error', id, error: wire(e) });
  }
}
