import { Act, type Region } from '../runtime/index.js';
import type { Linear } from './linear.js';

/** The position-wise feed-forward network: linear2(act(linear1(x))), act fused into linear1. */
export class FeedForward {
  constructor(
    private readonly linear1: Linear, // [dimFeedforward, dModel]
    private readonly linear2: Linear, // [dModel, dimFeedforward]
    private readonly act: Act.Relu | Act.Gelu | Act.Silu,
    private readonly hidden: Region, // [maxLen, dimFeedforward] scratch
  ) {}

  forward(out: Region, x: Region, rows: number): void {
    this.linear1.forward(this.hidden, 0, x, 0, rows, this.act);
    this.linear2.forward(out, 0, this.hidden, 0, rows);
  }
}
