import type { KV, MultiHeadAttention } from '../layers/attention.js';
import type { FeedForward } from '../layers/feedforward.js';
import type { Residual } from '../layers/norm.js';
import type { Region } from '../runtime/index.js';
import type { AttentionMaps } from './attention-maps.js';

/**
 * One decoder layer: masked self-attention over the target so far, cross-attention over the
 * encoder memory, then the feed-forward, each inside its residual + norm. It owns its caches.
 */
export class DecoderLayer {
  constructor(
    readonly index: number,
    readonly selfAttn: MultiHeadAttention,
    readonly multiheadAttn: MultiHeadAttention, // cross-attention
    readonly feedForward: FeedForward,
    readonly norm1: Residual,
    readonly norm2: Residual,
    readonly norm3: Residual,
    readonly cache: KV, // [maxLen, dModel] x2 keys and values of the target positions so far
    readonly memoryKV: KV, // [maxLen, dModel] x2 keys and values of the encoder memory
    private readonly y: Region, // [maxLen, dModel] scratch for a sublayer's output
  ) {}

  /** Computes memoryKV from the encoder output memory[memoryLen, dModel]: once per source. */
  remember(memory: Region, memoryLen: number): void {
    this.multiheadAttn.remember(this.memoryKV, memory, memoryLen);
  }

  /** x[rows, dModel] in place, for target positions pos..pos+rows; maps (one row only) records the weights. */
  forward(x: Region, rows: number, pos: number, memoryLen: number, memoryMask: Region | null, maps: AttentionMaps | null): void {
    const y = this.y;
    this.selfAttn.self(y, this.norm1.input(x, rows), rows, this.cache, pos, true, null);
    if (maps) this.selfAttn.record(maps, 'self', this.index, pos + 1);
    this.norm1.add(x, y, rows);
    this.multiheadAttn.cross(y, this.norm2.input(x, rows), rows, this.memoryKV, memoryLen, memoryMask);
    if (maps) this.multiheadAttn.record(maps, 'cross', this.index, memoryLen);
    this.norm2.add(x, y, rows);
    this.feedForward.forward(y, this.norm3.input(x, rows), rows);
    this.norm3.add(x, y, rows);
  }
}
