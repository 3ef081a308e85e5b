import { WasmformerError } from '../errors.js';
import type { ModelConfig } from '../io/config.js';
import type { Build, Runtime } from '../runtime/index.js';
import { AttentionMaps } from './attention-maps.js';
import type { Transformer } from './transformer.js';

/** Options of greedy decoding. */
export interface GenerateOptions {
  /** Tokens to produce at most, the final eos included; defaults to max_len, cannot exceed it. */
  maxNewTokens?: number;
  /** Called with each new id as soon as it exists (its index in the result second). */
  onToken?: (id: number, index: number) => void;
  /** Records the decoder's attention weights here, step by step (off, and free, by default). */
  attention?: AttentionMaps;
}

/**
 * A loaded model: the public face of the Transformer. Every call checks its input completely
 * before touching the model's state, so a call that fails leaves the model as it was.
 */
export class Model {
  readonly config: ModelConfig;
  /** The kernel build running this model: 'relaxed' (fused multiply-add) or 'simd'. */
  readonly build: Build;
  /** Parameters loaded (positional encodings and tied copies not counted). */
  readonly parameters: number;
  private rt: Runtime | null;
  private readonly net: Transformer;
  private encoded = false;
  private decoded = 0; // target positions held in the self-attention caches
  private epoch = 0; // counts the calls that change the caches, so a paused stream sees another's

  constructor(rt: Runtime, net: Transformer, parameters: number) {
    this.rt = rt;
    this.net = net;
    this.config = net.config;
    this.build = rt.build;
    this.parameters = parameters;
  }

  /** Bytes of WebAssembly memory this model holds (weights, caches, scratch). */
  get memoryBytes(): number {
    return this.runtime().memory.buffer.byteLength;
  }

  /** Runs the encoder over srcIds and computes every decoder layer's cross-attention keys and values. */
  encode(srcIds: ArrayLike<number>): void {
    const c = this.config;
    checkIds(srcIds, c.srcVocabSize, c.maxLen, 'source');
    let padded = false;
    for (let i = 0; i < srcIds.length; i++) padded ||= srcIds[i] === c.padId;
    if (padded && Array.prototype.every.call(srcIds, (id: number) => id === c.padId)) {
      throw new WasmformerError('BAD_INPUT', `source: every id is pad_id (${c.padId}): nothing to attend to`);
    }
    const { arena } = this.runtime();
    const { srcIds: ids, srcMask } = this.net.state;
    const i32 = arena.i32();
    const f32 = arena.f32();
    for (let i = 0; i < srcIds.length; i++) {
      i32[(ids.ptr >> 2) + i] = srcIds[i];
      f32[(srcMask.ptr >> 2) + i] = srcIds[i] === c.padId ? -Infinity : 0;
    }
    this.net.encode(srcIds.length, padded);
    this.epoch++;
    this.encoded = true;
    this.decoded = 0;
  }

  /**
   * Feeds `token` at target position `pos` (0 for bos; at most the positions decoded so far, so
   * a caller may rewind) and returns that position's logits [tgt_vocab]: a view of the model's
   * memory, valid until the next call.
   */
  decodeStep(token: number, pos: number): Float32Array {
    this.step(token, pos);
    const { logits } = this.net.state;
    return this.runtime().arena.f32().subarray(logits.ptr >> 2, (logits.ptr >> 2) + this.config.tgtVocabSize);
  }

  /** Teacher-forced logits of every target position: [tgtIds.length * tgt_vocab], row-major. */
  forward(srcIds: ArrayLike<number>, tgtIds: ArrayLike<number>): Float32Array {
    const c = this.config;
    checkIds(tgtIds, c.tgtVocabSize, c.maxLen, 'target');
    this.encode(srcIds);
    this.writeTarget(tgtIds);
    this.net.decode(tgtIds.length, 0, tgtIds.length);
    this.decoded = tgtIds.length;
    const { logits } = this.net.state;
    return this.runtime().arena.f32().slice(logits.ptr >> 2, (logits.ptr >> 2) + tgtIds.length * c.tgtVocabSize);
  }

  /** Greedy decoding: the generated ids, without the leading bos and the final eos. */
  async generate(srcIds: ArrayLike<number>, options: GenerateOptions = {}): Promise<number[]> {
    const ids: number[] = [];
    for await (const id of this.stream(srcIds, options)) ids.push(id);
    return ids;
  }

  /** Greedy decoding as a stream: `for await (const id of model.stream(srcIds))`. */
  async *stream(srcIds: ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<number> {
    const limit = this.start(srcIds, options);
    let epoch = this.epoch;
    const maps = options.attention ?? null;
    maps?.begin(this.config, srcIds.length);
    let token = this.config.bosId;
    for (let pos = 0; pos < limit; pos++) {
      if (pos > 0 && this.epoch !== epoch) {
        throw new WasmformerError('BAD_ARGUMENT', 'stream: another call used this model while the stream was paused (one decoding at a time per model)');
      }
      token = this.next(token, pos, maps);
      epoch = this.epoch;
      if (token === this.config.eosId) return;
      options.onToken?.(token, pos);
      yield token;
    }
  }

  /** Releases the model's memory; any later call is a DISPOSED error. */
  dispose(): void {
    this.rt = null;
  }

  /** Checks the options and encodes the source; returns the token limit. */
  private start(srcIds: ArrayLike<number>, options: GenerateOptions): number {
    const limit = options.maxNewTokens ?? this.config.maxLen;
    if (options.attention !== undefined && !(options.attention instanceof AttentionMaps)) {
      throw new WasmformerError('BAD_ARGUMENT', 'attention must be an AttentionMaps (new AttentionMaps())');
    }
    if (!Number.isInteger(limit) || limit < 0 || limit > this.config.maxLen) {
      throw new WasmformerError(
        'BAD_ARGUMENT',
        `maxNewTokens must be an integer in [0, max_len = ${this.config.maxLen}], got ${limit}`,
      );
    }
    this.encode(srcIds);
    return limit;
  }

  /** The greedy choice after feeding `token` at `pos`: the argmax of its logits. */
  private next(token: number, pos: number, maps: AttentionMaps | null): number {
    this.step(token, pos, maps);
    if (maps) maps.steps++;
    return this.runtime().kernels.argmax(this.net.state.logits, 0, this.config.tgtVocabSize);
  }

  private step(token: number, pos: number, maps: AttentionMaps | null = null): void {
    const c = this.config;
    if (!this.encoded) throw new WasmformerError('BAD_ARGUMENT', 'decodeStep: call encode(srcIds) first');
    if (!Number.isInteger(pos) || pos < 0 || pos > this.decoded || pos >= c.maxLen) {
      throw new WasmformerError(
        'BAD_ARGUMENT',
        `decodeStep: position ${pos} must be an integer in [0, ${Math.min(this.decoded, c.maxLen - 1)}] (positions decoded so far, below max_len ${c.maxLen})`,
      );
    }
    checkId(token, c.tgtVocabSize, 'target', 0);
    this.runtime().arena.i32()[this.net.state.tgtIds.ptr >> 2] = token;
    this.net.decode(1, pos, 1, maps);
    this.epoch++;
    this.decoded = pos + 1;
  }

  private writeTarget(tgtIds: ArrayLike<number>): void {
    const i32 = this.runtime().arena.i32();
    const base = this.net.state.tgtIds.ptr >> 2;
    for (let i = 0; i < tgtIds.length; i++) i32[base + i] = tgtIds[i];
  }

  private runtime(): Runtime {
    if (this.rt === null) throw new WasmformerError('DISPOSED', 'this model was disposed');
    return this.rt;
  }
}

/** Token ids: 1..maxLen integers in [0, vocab). */
function checkIds(ids: ArrayLike<number>, vocab: number, maxLen: number, what: string): void {
  if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
    throw new WasmformerError('BAD_INPUT', `${what}: expected an array of token ids`);
  }
  if (ids.length === 0) throw new WasmformerError('BAD_INPUT', `${what}: empty sequence`);
  if (ids.length > maxLen) {
    throw new WasmformerError('BAD_INPUT', `${what}: ${ids.length} tokens, more than max_len = ${maxLen}`);
  }
  for (let i = 0; i < ids.length; i++) checkId(ids[i], vocab, what, i);
}

function checkId(id: number, vocab: number, what: string, index: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocab) {
    throw new WasmformerError('BAD_INPUT', `${what}: id ${id} at position ${index} is outside the vocabulary [0, ${vocab})`);
  }
}
