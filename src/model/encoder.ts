import type { KV, MultiHeadAttention } from '../layers/attention.js';
import type { FeedForward } from '../layers/feedforward.js';
import type { Residual } from '../layers/norm.js';
import type { Region } from '../runtime/index.js';

/** One encoder layer: self-attention, then the feed-forward, each inside its residual + norm. */
export class EncoderLayer {
  constructor(
    readonly selfAttn: MultiHeadAttention,
    readonly feedForward: FeedForward,
    readonly norm1: Residual,
    readonly norm2: Residual,
    private readonly kv: KV, // [maxLen, dModel] x2 scratch for this layer's keys and values
    private readonly y: Region, // [maxLen, dModel] scratch for a sublayer's output
  ) {}

  /** x[rows, dModel] in place; srcMask hides padded source positions (null: none). */
  forward(x: Region, rows: number, srcMask: Region | null): void {
    const y = this.y;
    this.selfAttn.self(y, this.norm1.input(x, rows), rows, this.kv, 0, false, srcMask);
    this.norm1.add(x, y, rows);
    this.feedForward.forward(y, this.norm2.input(x, rows), rows);
    this.norm2.add(x, y, rows);
  }
}
