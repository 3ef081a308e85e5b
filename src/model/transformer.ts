import type { ModelConfig } from '../families/index.js';
import type { Embedding } from '../layers/embedding.js';
import type { Linear } from '../layers/linear.js';
import type { LayerNorm } from '../layers/norm.js';
import type { Arena } from '../runtime/index.js';
import { index } from '../runtime/index.js';
import type { AttentionMaps } from './attention-maps.js';
import type { DecoderLayer, StepKeys } from './decoder.js';
import type { DecoderRow, DecoderState, Source } from './decoder-state.js';
import type { EncoderLayer } from './encoder.js';
import type { RunState, StepScratch } from './state.js';

/**
 * The encoder-decoder of "Attention Is All You Need", Figure 1, over regions of one memory.
 * Its two verbs: `encode` a source once (into a DecoderState: every decoder layer's
 * cross-attention keys and values), then `step` any number of rows of a decoding by one
 * position, or `sequence` one row by many (teacher forcing). It keeps no decoding's state.
 */
export class Transformer {
  /** Floats of one position's keys and values in every decoder layer. */
  readonly rowFloats: number;
  /** How its matrices are stored: every one alike, so the generator's says. */
  readonly dtype: 'f32' | 'q8';

  constructor(
    readonly config: ModelConfig,
    readonly state: RunState,
    private readonly arena: Arena,
    readonly srcTokEmb: Embedding,
    readonly tgtTokEmb: Embedding,
    readonly encoderLayers: EncoderLayer[],
    readonly encoderNorm: LayerNorm | null,
    readonly decoderLayers: DecoderLayer[],
    readonly decoderNorm: LayerNorm | null,
    readonly generator: Linear,
  ) {
    this.rowFloats = 2 * config.dModel * config.numDecoderLayers;
    this.dtype = generator.weight.dtype;
  }

  /** Encodes checked source ids into a new source of the decoding `into`. */
  encode(src: readonly number[], into: DecoderState): Source {
    const { memory, srcIds, srcMask, srcPositions } = this.state;
    const padId = this.config.padId;
    const padded = src.includes(padId);
    this.arena.writeI32(srcIds, 0, src);
    this.arena.writeF32(srcMask, 0, src.map((id) => (id === padId ? -Infinity : 0)));
    // Input embedding * sqrt(d_model) + positional encoding
    this.srcTokEmb.forward(memory, srcIds, srcPositions, src.length);
    // N x (self-attention, feed-forward)
    for (const layer of this.encoderLayers) layer.forward(memory, src.length, padded ? srcMask : null, this.state);
    this.encoderNorm?.forward(memory, null, memory, null, src.length);
    // Every decoder layer's cross-attention keys and values, once per source
    const source = into.addSource(src.length, src.map((id) => id !== padId));
    for (const layer of this.decoderLayers) layer.remember(memory, src.length, source, this.rowFloats, this.state);
    return source;
  }

  /**
   * Feeds tokens[i] to rows[i] at its next position (rows of any lengths, states and sources)
   * and writes the logits of every row to s.logits [rows, tgt_vocab]; each row's state then keeps
   * the new position's keys and values, and the row's past includes it.
   */
  step(s: StepScratch, rows: readonly DecoderRow[], tokens: ArrayLike<number>, maps: AttentionMaps | null = null): void {
    const n = rows.length;
    const i32 = this.arena.i32();
    const stride = s.size.positions;
    for (let i = 0; i < n; i++) {
      const row = rows[i];
      const table = index(s.selfTables) + i * stride;
      i32.set(row.keys.subarray(0, row.length), table);
      i32[table + row.length] = index(s.newKeys) + i * this.rowFloats;
      i32[index(s.selfCounts) + i] = row.length + 1;
      i32[index(s.positions) + i] = row.length;
    }
    this.writeCross(s, rows);
    this.arena.writeI32(s.ids, 0, tokens);
    this.decode(s, n, maps, rows[0].source);
    for (let i = 0; i < n; i++) rows[i].push(rows[i].state.keep(index(s.newKeys) + i * this.rowFloats, 1));
  }

  /**
   * Teacher forcing: feeds tokens to one row at its next positions, all in one pass (query i
   * sees the row's past and tokens 0..i), and writes each position's logits to s.logits.
   */
  sequence(s: StepScratch, row: DecoderRow, tokens: readonly number[]): void {
    const n = tokens.length;
    const length = row.length;
    const i32 = this.arena.i32();
    const stride = s.size.positions;
    for (let i = 0; i < n; i++) {
      const table = index(s.selfTables) + i * stride;
      i32.set(row.keys.subarray(0, length), table);
      for (let j = 0; j <= i; j++) i32[table + length + j] = index(s.newKeys) + j * this.rowFloats;
      i32[index(s.selfCounts) + i] = length + i + 1;
      i32[index(s.positions) + i] = length + i;
    }
    this.writeCross(s, Array.from({ length: n }, () => row));
    this.arena.writeI32(s.ids, 0, tokens);
    this.decode(s, n, null, row.source);
    const first = row.state.keep(index(s.newKeys), n);
    for (let i = 0; i < n; i++) row.push(first + i * this.rowFloats);
  }

  /** Each row's source positions into the cross-attention tables. */
  private writeCross(s: StepScratch, rows: readonly DecoderRow[]): void {
    const i32 = this.arena.i32();
    for (let i = 0; i < rows.length; i++) {
      const { keys } = rows[i].source;
      i32.set(keys, index(s.crossTables) + i * s.size.sources);
      i32[index(s.crossCounts) + i] = keys.length;
    }
  }

  private keys(s: StepScratch): StepKeys {
    return {
      block: s.newKeys,
      rowFloats: this.rowFloats,
      self: { tables: s.selfTables, stride: s.size.positions, counts: s.selfCounts },
      cross: { tables: s.crossTables, stride: s.size.sources, counts: s.crossCounts },
    };
  }

  /** The decoder over s.ids[0, rows) at s.positions, then the generator. */
  private decode(s: StepScratch, rows: number, maps: AttentionMaps | null, source: Source): void {
    // Output embedding * sqrt(d_model) + positional encoding
    this.tgtTokEmb.forward(s.x, s.ids, s.positions, rows);
    // N x (masked self-attention, cross-attention over memory, feed-forward)
    const keys = this.keys(s);
    for (const layer of this.decoderLayers) layer.forward(s.x, rows, keys, s, maps, source);
    this.decoderNorm?.forward(s.x, null, s.x, null, rows);
    // Linear (the generator): logits over the target vocabulary
    this.generator.forward(s.logits, s.x, rows, s);
  }
}
