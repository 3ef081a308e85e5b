import { Act, type Region } from '../runtime/index.js';
import type { Linear } from './linear.js';
import type { Scratch } from './scratch.js';

/** The position-wise feed-forward network: linear2(act(linear1(x))), act fused into linear1. */
export class FeedForward {
  constructor(
    private readonly linear1: Linear, // [ffnDim, dModel]
    private readonly linear2: Linear, // [dModel, ffnDim]
    private readonly act: Act.Relu | Act.Gelu | Act.Silu,
  ) {}

  forward(out: Region, x: Region, rows: number, s: Scratch): void {
    this.linear1.forward(s.hidden, x, rows, s, this.act);
    this.linear2.forward(out, s.hidden, rows, s);
  }
}
