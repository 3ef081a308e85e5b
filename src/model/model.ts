import { WasmformerError } from '../errors.js';
import { describe } from '../io/describe.js';
import type { ModelConfig } from '../families/index.js';
import { checkOptions, isAbortSignal, isFunction, isNumber, type OptionSpec } from '../options.js';
import { badWords, banBadWords, defaultLimit, type BadWords } from '../generate/processors.js';
import { SLICE_MS, yieldToHost } from '../platform.js';
import type { Build, Runtime } from '../runtime/index.js';
import { AttentionMaps } from './attention-maps.js';
import type { Transformer } from './transformer.js';

/** Options of greedy decoding. */
export interface GenerateOptions {
  /**
   * Tokens to produce at most, the final eos included; cannot exceed max_len. Defaults to the
   * generation config's max_length less the start token (Hugging Face models), or max_len.
   */
  maxNewTokens?: number;
  /** Called with each new id as soon as it exists (its index in the result second). */
  onToken?: (id: number, index: number) => void;
  /** Records the decoder's attention weights here, step by step (off, and free, by default). */
  attention?: AttentionMaps;
  /** Cancels the call: it rejects with `signal.reason` (an AbortError) before its next token. */
  signal?: AbortSignal;
}

export const GENERATE_OPTIONS: OptionSpec = {
  maxNewTokens: ['an integer', isNumber],
  onToken: ['a function', isFunction],
  attention: ['an AttentionMaps (new AttentionMaps())', (v) => v instanceof AttentionMaps],
  signal: ['an AbortSignal', isAbortSignal],
};

/**
 * One greedy decoding as a value: its source and the tokens so far. That is all it takes to put
 * the model's caches back when another call used them in between.
 */
class Decoding {
  readonly tokens: number[] = []; // generated so far, without the start token and eos
  started = false;
  done = false;

  constructor(
    readonly src: readonly number[],
    readonly limit: number, // steps at most, the one producing eos included
    readonly maps: AttentionMaps | null,
    readonly signal: AbortSignal | null,
  ) {}
}

/**
 * A loaded model: the public face of the Transformer. Every call checks its input completely
 * before touching the model's state, so a call that fails leaves the model as it was. Calls
 * queue: one decodes at a time, and a decoding whose caches another call used in between
 * (a paused stream, an encode) puts them back before it goes on, so each call gets the ids it
 * would get alone.
 */
export class Model {
  readonly config: ModelConfig;
  /** The kernel build running this model: 'relaxed' (fused multiply-add) or 'simd'. */
  readonly build: Build;
  /** Parameters loaded (positional encodings and tied copies not counted). */
  readonly parameters: number;
  private rt: Runtime | null;
  private net: Transformer | null;
  private queue: Promise<unknown> = Promise.resolve();
  /** Whose source and target positions the caches hold: a Decoding, the step API's token, or nobody. */
  private holder: object | null = null;
  /** The step API's claim on the caches, renewed by every encode(). */
  private stepper: object | null = null;
  private decoded = 0; // target positions the step API holds in the caches
  private readonly bad: BadWords;

  constructor(rt: Runtime, net: Transformer, parameters: number) {
    this.rt = rt;
    this.net = net;
    this.config = net.config;
    this.build = rt.build;
    this.parameters = parameters;
    this.bad = badWords(net.config.generation, net.config.eosId);
  }

  /** Bytes of WebAssembly memory this model holds (weights, caches, scratch). */
  get memoryBytes(): number {
    return this.runtime().memory.buffer.byteLength;
  }

  /** Runs the encoder over srcIds and computes every decoder layer's cross-attention keys and values. */
  encode(srcIds: ArrayLike<number>): void {
    this.encodeSource(checkSource(srcIds, this.config));
    this.stepper = {};
    this.holder = this.stepper;
    this.decoded = 0;
  }

  /**
   * Feeds `token` at target position `pos` (0 for the start token; at most the positions decoded
   * so far, so a caller may rewind) and returns that position's logits [tgt_vocab]: a view of
   * the model's memory, valid until the next call.
   */
  decodeStep(token: number, pos: number): Float32Array {
    const c = this.config;
    if (this.stepper === null) throw new WasmformerError('BAD_ARGUMENT', 'decodeStep: call encode(srcIds) first');
    if (this.holder !== this.stepper) {
      throw new WasmformerError('BAD_ARGUMENT', 'decodeStep: another call used this model since encode(srcIds): call encode again');
    }
    if (!Number.isInteger(pos) || pos < 0 || pos > this.decoded || pos >= c.maxLen) {
      throw new WasmformerError(
        'BAD_ARGUMENT',
        `decodeStep: position ${pos} must be an integer in [0, ${Math.min(this.decoded, c.maxLen - 1)}] (positions decoded so far, below max_len ${c.maxLen})`,
      );
    }
    checkId(token, c.tgtVocabSize, 'target', 0);
    this.step(token, pos, null);
    this.decoded = pos + 1;
    const { arena } = this.runtime();
    return arena.readF32(this.transformer().state.logits, 0, c.tgtVocabSize);
  }

  /** Teacher-forced logits of every target position: [tgtIds.length * tgt_vocab], row-major. */
  forward(srcIds: ArrayLike<number>, tgtIds: ArrayLike<number>): Float32Array {
    const c = this.config;
    const src = checkSource(srcIds, c);
    const tgt = checkIds(tgtIds, c.tgtVocabSize, c.maxLen, 'target');
    this.encodeSource(src);
    this.holder = null;
    this.decodeRows(tgt, tgt.length);
    return this.runtime().arena.readF32(this.transformer().state.logits, 0, tgt.length * c.tgtVocabSize).slice();
  }

  /** Greedy decoding: the generated ids, without the start token and the final eos. */
  async generate(srcIds: ArrayLike<number>, options: GenerateOptions = {}): Promise<number[]> {
    const decoding = this.begin(srcIds, options);
    return this.exclusive(async () => {
      let slice = performance.now();
      for (let id = this.advance(decoding); id !== null; id = this.advance(decoding)) {
        options.onToken?.(id, decoding.tokens.length - 1);
        if (performance.now() - slice > SLICE_MS) {
          await yieldToHost();
          slice = performance.now();
        }
      }
      return decoding.tokens.slice();
    });
  }

  /**
   * Greedy decoding as a stream: `for await (const id of model.stream(srcIds))`. Each token is
   * one turn in the model's queue, so other calls may run while the stream is paused.
   */
  async *stream(srcIds: ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<number> {
    const decoding = this.begin(srcIds, options);
    let slice = performance.now();
    for (;;) {
      const id = await this.exclusive(() => this.advance(decoding));
      if (id === null) return;
      options.onToken?.(id, decoding.tokens.length - 1);
      yield id;
      if (performance.now() - slice > SLICE_MS) {
        await yieldToHost();
        slice = performance.now();
      }
    }
  }

  /** Releases the model's memory at once (nothing it held stays reachable); any later call is a DISPOSED error. */
  dispose(): void {
    this.rt = null;
    this.net = null;
    this.holder = null;
    this.stepper = null;
  }

  /** Checks a decoding's input and options completely; nothing is touched yet. */
  private begin(srcIds: ArrayLike<number>, options: GenerateOptions): Decoding {
    this.runtime();
    checkOptions(options, GENERATE_OPTIONS);
    const c = this.config;
    const src = checkSource(srcIds, c);
    const limit = options.maxNewTokens ?? defaultLimit(c.generation, c.maxLen);
    if (!Number.isInteger(limit) || limit < 0 || limit > c.maxLen) {
      throw new WasmformerError('BAD_ARGUMENT', `maxNewTokens must be an integer in [0, max_len = ${c.maxLen}], got ${describe(limit)}`);
    }
    options.signal?.throwIfAborted();
    return new Decoding(src, limit, options.attention ?? null, options.signal ?? null);
  }

  /** Runs f after every call queued before it. */
  private exclusive<T>(f: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** One greedy step of a decoding: the next id, or null once it produced eos or reached its limit. */
  private advance(d: Decoding): number | null {
    if (d.done) return null;
    d.signal?.throwIfAborted();
    if (!d.started) {
      d.started = true;
      d.maps?.begin(this.config, d.src.length);
    }
    if (this.holder !== d) this.restore(d);
    const pos = d.tokens.length;
    if (pos >= d.limit) {
      d.done = true;
      return null;
    }
    d.maps?.startStep();
    const c = this.config;
    this.step(pos === 0 ? c.decoderStartId : d.tokens[pos - 1], pos, d.maps);
    const id = this.choose(d, pos);
    if (id === c.eosId) {
      d.done = true;
      return null;
    }
    d.tokens.push(id);
    return id;
  }

  /**
   * The greedy choice of step pos from its logits, after generate()'s rules: the forced eos at
   * the last step when the model has one, else the argmax (lowest id on a tie) of the logits
   * with the bad words banned.
   */
  private choose(d: Decoding, pos: number): number {
    const c = this.config;
    const forced = c.generation.forcedEosTokenId;
    if (forced !== null && pos === d.limit - 1) return forced;
    const { arena, kernels } = this.runtime();
    const { logits } = this.transformer().state;
    if (this.bad.always.length + this.bad.sequences.length > 0) {
      banBadWords(arena.readF32(logits, 0, c.tgtVocabSize), this.bad, c.decoderStartId, d.tokens);
    }
    return kernels.argmax(logits, 0, c.tgtVocabSize);
  }

  /** Puts a decoding's source and target positions back into the caches (another call used them). */
  private restore(d: Decoding): void {
    this.encodeSource(d.src);
    this.holder = d;
    // Positions 0 .. n-1 were fed [bos, tokens[0], ..., tokens[n-2]]: one pass over them all
    // computes the same rows as the steps did, one at a time.
    const n = d.tokens.length;
    if (n > 0) this.decodeRows([this.config.decoderStartId, ...d.tokens.slice(0, n - 1)], 1);
  }

  /** The encoder over checked source ids; the caches then hold no target position. */
  private encodeSource(src: readonly number[]): void {
    const { arena } = this.runtime();
    const net = this.transformer();
    const { srcIds, srcMask } = net.state;
    const padId = this.config.padId;
    arena.writeI32(srcIds, 0, src);
    arena.writeF32(srcMask, 0, src.map((id) => (id === padId ? -Infinity : 0)));
    net.encode(src.length, src.includes(padId));
    this.holder = null;
  }

  /** Teacher-forced target ids at positions 0 .. ids.length-1; logits of the last `logitRows`. */
  private decodeRows(ids: readonly number[], logitRows: number): void {
    const net = this.transformer();
    this.runtime().arena.writeI32(net.state.tgtIds, 0, ids);
    net.decode(ids.length, 0, logitRows);
  }

  /** Feeds one checked token at position pos; its logits land in state.logits. */
  private step(token: number, pos: number, maps: AttentionMaps | null): void {
    const net = this.transformer();
    this.runtime().arena.storeI32(net.state.tgtIds, 0, token);
    net.decode(1, pos, 1, maps);
  }

  private runtime(): Runtime {
    if (this.rt === null) throw new WasmformerError('DISPOSED', 'this model was disposed');
    return this.rt;
  }

  private transformer(): Transformer {
    if (this.net === null) throw new WasmformerError('DISPOSED', 'this model was disposed');
    return this.net;
  }
}

/** Source ids, copied: 1..maxLen ids in [0, src_vocab), not all of them padding. */
function checkSource(srcIds: ArrayLike<number>, c: ModelConfig): number[] {
  const src = checkIds(srcIds, c.srcVocabSize, c.maxLen, 'source');
  if (src.every((id) => id === c.padId)) {
    throw new WasmformerError('BAD_INPUT', `source: every id is pad_id (${c.padId}): nothing to attend to`);
  }
  return src;
}

/** Token ids, copied (a caller's array may change later): 1..maxLen integers in [0, vocab). */
function checkIds(ids: ArrayLike<number>, vocab: number, maxLen: number, what: string): number[] {
  if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
    throw new WasmformerError('BAD_INPUT', `${what}: expected an array of token ids, got ${describe(ids)}`);
  }
  if (ids.length === 0) throw new WasmformerError('BAD_INPUT', `${what}: empty sequence`);
  if (ids.length > maxLen) {
    throw new WasmformerError('BAD_INPUT', `${what}: ${ids.length} tokens, more than max_len = ${maxLen}`);
  }
  const copy = Array.from(ids);
  copy.forEach((id, i) => checkId(id, vocab, what, i));
  return copy;
}

function checkId(id: number, vocab: number, what: string, at: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocab) {
    throw new WasmformerError('BAD_INPUT', `${what}: id ${describe(id)} at position ${at} is outside the vocabulary [0, ${vocab})`);
  }
}
