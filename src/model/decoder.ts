import type { KeyTables, MultiHeadAttention } from '../layers/attention.js';
import type { FeedForward } from '../layers/feedforward.js';
import type { Residual } from '../layers/norm.js';
import type { Scratch } from '../layers/scratch.js';
import type { Region } from '../runtime/index.js';
import type { AttentionMaps } from './attention-maps.js';
import type { Source } from './decoder-state.js';
import type { StepScratch } from './state.js';

/** Where a step's rows find their keys and values: their tables, and the block this step writes. */
export interface StepKeys {
  readonly block: Region; // this step's new positions: row i at element i · rowFloats
  readonly rowFloats: number; // one position's keys and values, every layer
  readonly self: Omit<KeyTables, 'kAdd' | 'vAdd'>; // each row's past positions, the new one included
  readonly cross: Omit<KeyTables, 'kAdd' | 'vAdd'>; // each row's source positions
}

/**
 * One decoder layer: masked self-attention over the target so far, cross-attention over the
 * encoder memory, then the feed-forward, each inside its residual + norm. It keeps nothing:
 * its keys and values live in the decoding's blocks, at `slot` within each position's row.
 */
export class DecoderLayer {
  readonly slot: number; // element offset of this layer's key (its value follows) in a position's row

  constructor(
    readonly index: number,
    readonly selfAttn: MultiHeadAttention,
    readonly multiheadAttn: MultiHeadAttention, // cross-attention
    readonly feedForward: FeedForward,
    readonly norm1: Residual,
    readonly norm2: Residual,
    readonly norm3: Residual,
    private readonly dModel: number,
  ) {
    this.slot = 2 * dModel * index;
  }

  /** Writes the cross-attention keys and values of the encoder output memory[length, dModel] into a source's block. */
  remember(memory: Region, length: number, source: Source, rowFloats: number, s: Scratch): void {
    this.multiheadAttn.keysAndValues(source.block, this.slot, rowFloats, memory, length, s);
  }

  /** x[rows, dModel] in place for one new position per row; maps (one row only) records the weights. */
  forward(x: Region, rows: number, keys: StepKeys, s: StepScratch, maps: AttentionMaps | null, source: Source | null): void {
    const at = (t: Omit<KeyTables, 'kAdd' | 'vAdd'>): KeyTables => ({ ...t, kAdd: this.slot, vAdd: this.slot + this.dModel });
    const input = this.norm1.input(x, rows, s);
    this.selfAttn.keysAndValues(keys.block, this.slot, keys.rowFloats, input, rows, s);
    this.selfAttn.attend(s.y, input, rows, at(keys.self), s);
    if (maps) this.selfAttn.record(maps, 'self', this.index, s, maps.steps);
    this.norm1.add(x, s.y, rows);
    this.multiheadAttn.attend(s.y, this.norm2.input(x, rows, s), rows, at(keys.cross), s);
    if (maps && source) this.multiheadAttn.record(maps, 'cross', this.index, s, source.keys.length, source.positions);
    this.norm2.add(x, s.y, rows);
    this.feedForward.forward(s.y, this.norm3.input(x, rows, s), rows, s);
    this.norm3.add(x, s.y, rows);
  }
}
