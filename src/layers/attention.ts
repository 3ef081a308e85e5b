import type { AttentionMaps } from '../model/attention-maps.js';
import { index, type Kernels, type Region } from '../runtime/index.js';
import type { Linear } from './linear.js';
import type { Scratch } from './scratch.js';

/** Keys and values of one attention, row i for position i: each [rows, dModel]. */
export interface KV {
  readonly k: Region;
  readonly v: Region;
}

/**
 * Where a decoding step's queries find their keys and values: per query row a table of the
 * element offsets of its key rows (the DecoderState's blocks), how many, and where in a row the
 * key and the value of this layer's attention start. See Kernels.attendRows.
 */
export interface KeyTables {
  readonly tables: Region; // int32 [rows, stride]
  readonly stride: number;
  readonly counts: Region; // int32 [rows]
  readonly kAdd: number;
  readonly vAdd: number;
}

/**
 * Multi-head attention (torch.nn.MultiheadAttention, or Marian's q/k/v/out projections): the
 * q, k, v projections packed separately (so keys and values are written straight into the rows
 * that keep them), scaled dot-product attention per head, the output projection. One class for
 * the three uses: encoder self-attention, masked decoder self-attention, cross-attention.
 */
export class MultiHeadAttention {
  private readonly dK: number;
  private readonly scale: number;

  constructor(
    private readonly kernels: Kernels,
    private readonly wq: Linear,
    private readonly wk: Linear,
    private readonly wv: Linear,
    private readonly wo: Linear, // out_proj
    readonly nhead: number,
  ) {
    this.dK = wq.outFeatures / nhead;
    this.scale = 1 / Math.sqrt(this.dK);
  }

  /**
   * The encoder's self-attention over x[rows, dModel], every row seeing every key but the
   * padded ones (keyMask: 0 or -Infinity per key; null: none); kv holds its keys and values.
   */
  encoderSelf(out: Region, x: Region, rows: number, kv: KV, keyMask: Region | null, s: Scratch): void {
    const d = this.wq.outFeatures;
    this.wk.forward(kv.k, x, rows, s);
    this.wv.forward(kv.v, x, rows, s);
    this.wq.forward(s.q, x, rows, s);
    this.kernels.attention(
      s.ctx, 0, s.q, 0, kv.k, 0, kv.v, 0, s.probs, rows, rows, this.nhead, this.dK,
      d, d, d, d, this.scale, -1, keyMask, rows * rows,
    );
    this.wo.forward(out, s.ctx, rows, s);
  }

  /**
   * Writes the keys and values of x[rows, dModel] into block rows: row i's key at element
   * at + i·ld, its value at at + dModel + i·ld (a decoding step's new positions, or a source's
   * positions for cross-attention).
   */
  keysAndValues(block: Region, at: number, ld: number, x: Region, rows: number, s: Scratch): void {
    this.wk.forwardInto(block, at, ld, x, rows, s);
    this.wv.forwardInto(block, at + this.wq.outFeatures, ld, x, rows, s);
  }

  /** out = out_proj(attention of x[rows]'s queries, each over the keys its table names). */
  attend(out: Region, x: Region, rows: number, keys: KeyTables, s: Scratch, probsStride = 0): void {
    const d = this.wq.outFeatures;
    this.wq.forward(s.q, x, rows, s);
    this.kernels.attendRows(
      s.ctx, s.q, s.probs, rows, this.nhead, this.dK, d, d,
      keys.tables, keys.stride, keys.counts, keys.kAdd, keys.vAdd, this.scale, probsStride,
    );
    this.wo.forward(out, s.ctx, rows, s);
  }

  /** Hands the weights of the last attend, one query over keyLen keys, to maps (at `positions` when given). */
  record(maps: AttentionMaps, kind: 'self' | 'cross', layer: number, s: Scratch, keyLen: number, positions?: readonly number[]): void {
    maps.record(kind, layer, this.kernels.arena.f32(), index(s.probs), keyLen, positions);
  }
}
