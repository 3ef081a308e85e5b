import { WasmformerError } from '../errors.js';
import { describe } from '../io/describe.js';
import type { ModelConfig } from '../families/index.js';
import { GENERATE_OPTIONS, newSearch, settings, type GenerateOptions, type Hypothesis, type Search, type Settings, type StepLogits } from '../generate/index.js';
import { checkOptions } from '../options.js';
import { SLICE_MS, yieldToHost } from '../platform.js';
import { Heap, type Build, type Runtime } from '../runtime/index.js';
import { DecoderRow, DecoderState } from './decoder-state.js';
import { StepScratch } from './state.js';
import type { Transformer } from './transformer.js';

/** A source being decoded: its index in the call, its search, and the state holding its keys and values. */
interface Decoded {
  readonly index: number;
  readonly search: Search;
  readonly state: DecoderState;
}

/**
 * One decoding call as a value: its sources, its settings, and for each source being decoded
 * its search (which owns its hypotheses and their rows) and its DecoderState, which no other
 * call touches. At most settings.batchSize sources decode together; the others start as those
 * finish, and a finished source's memory goes back at once.
 */
class Decoding {
  readonly running: Decoded[] = [];
  readonly results: Hypothesis[][] = [];
  /** Sources started so far. */
  started = 0;
  done = false;
  private readonly reported: (readonly number[])[] = [];

  constructor(
    readonly sources: readonly number[][],
    readonly settings: Settings,
    readonly options: GenerateOptions,
  ) {}

  /** Source i's leading hypothesis: its search's, or its best result once it finished. */
  leader(i: number): readonly number[] {
    return this.running.find((r) => r.index === i)?.search.leader() ?? this.results[i]?.[0]?.ids ?? [];
  }

  /** Records a finished source's hypotheses and frees its state. */
  finish(r: Decoded): void {
    this.results[r.index] = r.search.results();
    r.state.release();
    this.running.splice(this.running.indexOf(r), 1);
  }

  /** Calls onToken for each source whose leading hypothesis changed since it last did. */
  report(): void {
    const onToken = this.options.onToken;
    if (onToken === undefined) return;
    for (const { index, search } of this.running) {
      const ids = search.leader();
      const last = this.reported[index] ?? [];
      if (ids.length === 0 || (ids.length === last.length && ids.every((id, j) => id === last[j]))) continue;
      this.reported[index] = ids;
      onToken(ids[ids.length - 1], ids.length - 1, ids, index);
    }
  }

  /** Frees every state: once it is done, failed, or abandoned. */
  release(): void {
    for (const r of this.running) r.state.release();
    this.running.length = 0;
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
  /** How the weights run: 'f32' (float32), or 'q8' (int8, one scale per output row; loadModel's dtype option). */
  readonly dtype: 'f32' | 'q8';
  /** Parameters loaded, as the checkpoint's own library counts them. */
  readonly parameters: number;
  private rt: Runtime | null;
  private net: Transformer | null;
  private heap: Heap | null;
  private scratch: StepScratch | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** The step API's decoding (encode / decodeStep). */
  private stepper: DecoderRow | null = null;

  constructor(rt: Runtime, net: Transformer, parameters: number) {
    this.rt = rt;
    this.net = net;
    this.heap = new Heap(rt.arena);
    this.config = net.config;
    this.build = rt.build;
    this.dtype = net.dtype;
    this.parameters = parameters;
  }

  /**
   * Threads running this model's kernels now: loadModel's `threads`, or fewer where threads
   * cannot be had or stopped paying (threadsReason says why).
   */
  get threads(): number {
    return this.runtime().team.threads;
  }

  /** Why fewer threads run than loadModel's `threads` asked for; null when as asked. */
  get threadsReason(): string | null {
    return this.runtime().team.reason;
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
    this.stepper = new DecoderRow(state, this.transformer().encode(src, state));
  }

  /**
   * Feeds `token` at target position `pos` (0 for the start token; at most the positions decoded
   * so far, so a caller may rewind) and returns that position's logits [tgt_vocab]: a view of
   * the model's memory, valid until the next call.
   */
  decodeStep(token: number, pos: number): Float32Array {
    const c = this.config;
    const row = this.stepper;
    if (row === null) throw new WasmformerError('BAD_ARGUMENT', 'decodeStep: call encode(srcIds) first');
    if (!Number.isInteger(pos) || pos < 0 || pos > row.length || pos >= c.maxLen) {
      throw new WasmformerError(
        'BAD_ARGUMENT',
        `decodeStep: position ${pos} must be an integer in [0, ${Math.min(row.length, c.maxLen - 1)}] (positions decoded so far, below max_len ${c.maxLen})`,
      );
    }
    checkId(token, c.tgtVocabSize, 'target', 0);
    row.truncate(pos);
    const s = this.scratchFor(1);
    this.transformer().step(s, [row], [token]);
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
      const row = new DecoderRow(state, net.encode(src, state));
      const s = this.scratchFor(tgt.length);
      net.sequence(s, row, tgt);
      return this.runtime().arena.readF32(s.logits, 0, tgt.length * c.tgtVocabSize).slice();
    } finally {
      state.release();
    }
  }

  /**
   * The best hypothesis for srcIds, as transformers' generate() gives it (without the start token
   * and the final eos): greedy when numBeams is 1, beam search when more, sampling with doSample.
   * Options left out take the model's generation config (generation_config.json).
   */
  async generate(srcIds: ArrayLike<number>, options: GenerateOptions = {}): Promise<number[]> {
    return (await this.search(srcIds, options))[0]?.ids ?? [];
  }

  /** numReturnSequences hypotheses for srcIds, best first, with their scores (transformers' sequences_scores). */
  async search(srcIds: ArrayLike<number>, options: GenerateOptions = {}): Promise<Hypothesis[]> {
    return (await this.decode(this.begin([srcIds], options)))[0];
  }

  /**
   * generate() over many sources at once, each getting exactly the ids it gets alone: their
   * hypotheses step together as rows of one matrix, each source stopping at its own end.
   */
  async generateBatch(srcIdsList: readonly ArrayLike<number>[], options: GenerateOptions = {}): Promise<number[][]> {
    if (!Array.isArray(srcIdsList)) throw new WasmformerError('BAD_INPUT', `sources: expected an array of token id arrays, got ${describe(srcIdsList)}`);
    return (await this.decode(this.begin(srcIdsList, options))).map((hypotheses) => hypotheses[0]?.ids ?? []);
  }

  /**
   * Greedy (or sampled) decoding as a stream: `for await (const id of model.stream(srcIds))`.
   * Each step is one turn in the model's queue, so other calls may run while the stream is
   * paused. Beams cannot stream (their best hypothesis changes as they go): use onToken.
   */
  async *stream(srcIds: ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<number> {
    checkOptions(options, GENERATE_OPTIONS);
    const d = this.begin([srcIds], { numBeams: 1, ...options });
    if (d.settings.numBeams > 1 || d.settings.numReturnSequences > 1) {
      throw new WasmformerError('BAD_ARGUMENT', 'stream decodes one hypothesis (numBeams 1, numReturnSequences 1): use generate() with onToken to follow a beam search');
    }
    try {
      let given = 0;
      let slice = performance.now();
      for (;;) {
        const going = await this.exclusive(() => this.advance(d));
        const ids = d.leader(0);
        while (given < ids.length) yield ids[given++];
        if (!going) return;
        if (performance.now() - slice > SLICE_MS) {
          await yieldToHost();
          slice = performance.now();
        }
      }
    } finally {
      d.release(); // done, failed, or left early by the caller
    }
  }

  /**
   * Releases the model's memory at once (nothing it held stays reachable) and stops its helper
   * threads; resolves once they have exited. Any later call is a DISPOSED error.
   */
  dispose(): Promise<void> {
    const team = this.rt?.team;
    this.rt = null;
    this.net = null;
    this.heap = null;
    this.scratch = null;
    this.stepper = null;
    return team?.dispose() ?? Promise.resolve();
  }

  /** Checks a decoding's sources and options completely; nothing is touched yet. */
  private begin(srcIdsList: readonly ArrayLike<number>[], options: GenerateOptions): Decoding {
    this.runtime();
    const c = this.config;
    const resolved = settings(options, c);
    if (srcIdsList.length === 0) throw new WasmformerError('BAD_INPUT', 'sources: no source to decode');
    const sources = srcIdsList.map((ids, i) => checkSource(ids, c, srcIdsList.length > 1 ? `source ${i}` : 'source'));
    if (options.attention !== undefined && (sources.length > 1 || resolved.numBeams > 1 || resolved.numReturnSequences > 1)) {
      throw new WasmformerError('BAD_ARGUMENT', 'options.attention records one hypothesis of one source: numBeams 1, numReturnSequences 1, no batch');
    }
    options.signal?.throwIfAborted();
    return new Decoding(sources, resolved, options);
  }

  /** Runs a decoding to its end in one turn of the queue, yielding to the host between slices of work; each source's hypotheses. */
  private decode(d: Decoding): Promise<Hypothesis[][]> {
    return this.exclusive(async () => {
      try {
        let slice = performance.now();
        while (this.advance(d)) {
          if (performance.now() - slice > SLICE_MS) {
            await yieldToHost();
            slice = performance.now();
          }
        }
        return d.results;
      } finally {
        d.release();
      }
    });
  }

  /** Runs f after every call queued before it. */
  private exclusive<T>(f: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * One piece of a decoding's work: handing back the sources that finished, encoding the next
   * source when there is room, or else one step of every source running (their rows fed
   * together, whatever their lengths). False once every source finished.
   */
  private advance(d: Decoding): boolean {
    if (d.done) return false;
    d.options.signal?.throwIfAborted();
    const net = this.transformer();
    const next = d.running.map((r) => r.search.next());
    d.running.filter((_, i) => next[i].rows.length === 0).forEach((r) => d.finish(r));
    if (d.running.length < d.settings.batchSize && d.started < d.sources.length) {
      const index = d.started++;
      const src = d.sources[index];
      if (index === 0) d.options.attention?.begin(this.config, src.length);
      const state = this.newState();
      d.running.push({ index, state, search: newSearch(new DecoderRow(state, net.encode(src, state)), d.settings, this.config) });
      return true;
    }
    if (d.running.length === 0) {
      d.release();
      return false;
    }
    const feeds = next.filter((f) => f.rows.length > 0); // the running sources' feeds, in order (finish keeps it)
    const rows = feeds.flatMap((f) => f.rows);
    const maps = d.options.attention ?? null;
    maps?.startStep();
    const s = this.scratchFor(rows.length);
    net.step(s, rows, feeds.flatMap((f) => f.tokens), maps);
    let first = 0;
    d.running.forEach((r, i) => {
      r.search.update(this.stepLogits(s, first));
      first += feeds[i].rows.length;
    });
    d.report();
    return true;
  }

  /** The logits of a step's rows first, first + 1, ... as one search sees them. */
  private stepLogits(s: StepScratch, first: number): StepLogits {
    const { arena, kernels } = this.runtime();
    const vocab = this.config.tgtVocabSize;
    return {
      row: (i) => arena.readF32(s.logits, (first + i) * vocab, vocab),
      logSoftmax: (count) => kernels.logSoftmax(s.logits, first * vocab, count, vocab, vocab),
      argmax: (i) => kernels.argmax(s.logits, (first + i) * vocab, vocab),
    };
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
    this.scratch = new StepScratch(this.heap, c, { ...size, rows: Math.max(rows, before?.size.rows ?? 0) }, this.transformer().state.rowBytes);
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
function checkSource(srcIds: ArrayLike<number>, c: ModelConfig, what = 'source'): number[] {
  const src = checkIds(srcIds, c.srcVocabSize, c.maxLen, what);
  if (src.every((id) => id === c.padId)) {
    throw new WasmformerError('BAD_INPUT', `${what}: every id is pad_id (${c.padId}): nothing to attend to`);
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
