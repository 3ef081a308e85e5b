import type { MultiHeadAttention } from '../layers/attention.js';
import type { FeedForward } from '../layers/feedforward.js';
import type { Residual } from '../layers/norm.js';
import type { Region } from '../runtime/index.js';
import type { RunState } from './state.js';

/** One encoder layer: self-attention, then the feed-forward, each inside its residual + norm. */
export class EncoderLayer {
  constructor(
    readonly selfAttn: MultiHeadAttention,
    readonly feedForward: FeedForward,
    readonly norm1: Residual,
    readonly norm2: Residual,
  ) {}

  /** x[rows, dModel] in place; srcMask hides padded source positions (null: none). */
  forward(x: Region, rows: number, srcMask: Region | null, s: RunState): void {
    this.selfAttn.encoderSelf(s.y, this.norm1.input(x, rows, s), rows, s.encoderKV, srcMask, s);
    this.norm1.add(x, s.y, rows);
    this.feedForward.forward(s.y, this.norm2.input(x, rows, s), rows, s);
    this.norm2.add(x, s.y, rows);
  }
}
