import { WasmformerError } from '../errors.js';
import { describe } from '../io/describe.js';
import type { ModelConfig } from '../families/index.js';
import { checkOptions, isAbortSignal, isFunction, isNumber, type OptionSpec } from '../options.js';
import { badWords, banBadWords, defaultLimit, type BadWords } from '../generate/processors.js';
import { SLICE_MS, yieldToHost } from '../platform.js';
import { Heap, type Build, type Runtime } from '../runtime/index.js';
import { AttentionMaps } from './attention-maps.js';
import { DecoderRow, DecoderState } from './decoder-state.js';
import { StepScratch } from './state.js';
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
 * One greedy decoding as a value: its source, the tokens so far, and its DecoderState (the
 * keys and values of its source and of its positions so far), which no other call touches.
 */
class Decoding {
  readonly tokens: number[] = []; // generated so far, without the start token and eos
  started = false;
  done = false;
  state: DecoderState | null = null;
  row: DecoderRow | null = null;

  constructor(
    readonly src: readonly number[],
    readonly limit: number, // steps at most, the one producing eos included
    readonly maps: AttentionMaps | null,
    readonly signal: AbortSignal | null,
  ) {}

  /** Frees its state: once it is done, failed, or abandoned. */
  release(): void {
    this.state?.release();
    this.state = null;
    this.done = true;
  }
}

/**
 * A loaded model: the public face of the Transformer. Every call checks its input completely
 * before touching the model, so a call that fails leaves the model as it was. Each decoding owns
 * its state, so calls may interleave freely; they queue for the model's step scratch, one step at
 * a time.
 */
export class Model {
  readonly config: ModelConfig;
  /** The kernel build running this model: 'relaxed' (fused multiply-add) or 'simd'. */
  readonly build: Build;
  /** Parameters loaded, as the checkpoint's own library counts them. */
  readonly parameters: number;
  private rt: Runtime | null;
  private net: Transformer | null;
  private heap: Heap | null;
  private scratch: StepScratch | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** The step API's decoding (encode / decodeStep). */
  private stepper: { state: DecoderState; row: DecoderRow } | null = null;
  private readonly bad: BadWords;

  constructor(rt: Runtime, net: Transformer, parameters: number) {
    this.rt = rt;
    this.net = net;
    this.heap = new Heap(rt.arena);
    this.config = net.config;
    this.build = rt.build;
    this.parameters = parameters;
    this.bad = badWords(net.config.generation, net.config.eosId);
  }

  /** Bytes of WebAssembly memory this model holds (weights, scratch, decodings' keys and values). */
  get memoryBytes(): number {
    return this.runtime().memory.buffer.byteLength;
  }

  /** Runs the encoder over srcIds and computes every decoder layer's cross-attention keys and values. */
  encode(srcIds: ArrayLike<number>): void {
    const src = checkSource(srcIds, this.config);
    this.stepper?.state.release();
    this.stepper = null;
    const state = this.newState();
    this.stepper = { state, row: new DecoderRow(this.transformer().encode(src, state)) };
  }

  /**
   * Feeds `token` at target position `pos` (0 for the start token; at most the positions decoded
   * so far, so a caller may rewind) and returns that position's logits [tgt_vocab]: a view of
   * the model's memory, valid until the next call.
   */
  decodeStep(token: number, pos: number): Float32Array {
    const c = this.config;
    if (this.stepper === null) throw new WasmformerError('BAD_ARGUMENT', 'decodeStep: call encode(srcIds) first');
    const { state, row } = this.stepper;
    if (!Number.isInteger(pos) || pos < 0 || pos > row.length || pos >= c.maxLen) {
      throw new WasmformerError(
        'BAD_ARGUMENT',
        `decodeStep: position ${pos} must be an integer in [0, ${Math.min(row.length, c.maxLen - 1)}] (positions decoded so far, below max_len ${c.maxLen})`,
      );
    }
    checkId(token, c.tgtVocabSize, 'target', 0);
    row.truncate(pos);
    const s = this.scratchFor(1);
    this.transformer().step(s, state, [row], [token]);
    return this.runtime().arena.readF32(s.logits, 0, c.tgtVocabSize);
  }

  /** Teacher-forced logits of every target position: [tgtIds.length * tgt_vocab], row-major. */
  forward(srcIds: ArrayLike<number>, tgtIds: ArrayLike<number>): Float32Array {
    const c = this.config;
    const src = checkSource(srcIds, c);
    const tgt = checkIds(tgtIds, c.tgtVocabSize, c.maxLen, 'target');
    const state = this.newState();
    try {
      const net = this.transformer();
      const row = new DecoderRow(net.encode(src, state));
      const s = this.scratchFor(tgt.length);
      net.sequence(s, state, row, tgt);
      return this.runtime().arena.readF32(s.logits, 0, tgt.length * c.tgtVocabSize).slice();
    } finally {
      state.release();
    }
  }

  /** Greedy decoding: the generated ids, without the start token and the final eos. */
  async generate(srcIds: ArrayLike<number>, options: GenerateOptions = {}): Promise<number[]> {
    const decoding = this.begin(srcIds, options);
    return this.exclusive(async () => {
      try {
        let slice = performance.now();
        for (let id = this.advance(decoding); id !== null; id = this.advance(decoding)) {
          options.onToken?.(id, decoding.tokens.length - 1);
          if (performance.now() - slice > SLICE_MS) {
            await yieldToHost();
            slice = performance.now();
          }
        }
        return decoding.tokens.slice();
      } finally {
        decoding.release();
      }
    });
  }

  /**
   * Greedy decoding as a stream: `for await (const id of model.stream(srcIds))`. Each token is
   * one turn in the model's queue, so other calls may run while the stream is paused.
   */
  async *stream(srcIds: ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<number> {
    const decoding = this.begin(srcIds, options);
    try {
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
    } finally {
      decoding.release(); // done, failed, or left early by the caller
    }
  }

  /** Releases the model's memory at once (nothing it held stays reachable); any later call is a DISPOSED error. */
  dispose(): void {
    this.rt = null;
    this.net = null;
    this.heap = null;
    this.scratch = null;
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
    const net = this.transformer();
    if (!d.started) {
      d.started = true;
      d.maps?.begin(this.config, d.src.length);
      d.state = this.newState();
      d.row = new DecoderRow(net.encode(d.src, d.state));
    }
    const pos = d.tokens.length;
    if (pos >= d.limit) {
      d.release();
      return null;
    }
    d.maps?.startStep();
    const c = this.config;
    const s = this.scratchFor(1);
    net.step(s, d.state!, [d.row!], [pos === 0 ? c.decoderStartId : d.tokens[pos - 1]], d.maps);
    const id = this.choose(d, pos, s);
    if (id === c.eosId) {
      d.release();
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
  private choose(d: Decoding, pos: number, s: StepScratch): number {
    const c = this.config;
    const forced = c.generation.forcedEosTokenId;
    if (forced !== null && pos === d.limit - 1) return forced;
    const { arena, kernels } = this.runtime();
    if (this.bad.always.length + this.bad.sequences.length > 0) {
      banBadWords(arena.readF32(s.logits, 0, c.tgtVocabSize), this.bad, c.decoderStartId, d.tokens);
    }
    return kernels.argmax(s.logits, 0, c.tgtVocabSize);
  }

  /** A new, empty decoding state on the model's heap. */
  private newState(): DecoderState {
    if (this.heap === null) throw new WasmformerError('DISPOSED', 'this model was disposed');
    return new DecoderState(this.heap, this.transformer().rowFloats);
  }

  /** The step scratch, grown to hold `rows` rows (every step sees at most max_len positions and source positions). */
  private scratchFor(rows: number): StepScratch {
    const c = this.config;
    const size = { rows, positions: c.maxLen, sources: c.maxLen };
    if (this.scratch?.fits(size)) return this.scratch;
    if (this.heap === null) throw new WasmformerError('DISPOSED', 'this model was disposed');
    const before = this.scratch;
    this.scratch = null;
    before?.release();
    this.scratch = new StepScratch(this.heap, c, { ...size, rows: Math.max(rows, before?.size.rows ?? 0) });
    return this.scratch;
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
