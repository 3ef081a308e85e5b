import type { Kernels, Region } from '../runtime/index.js';
import type { Scratch } from './scratch.js';

/** torch.nn.LayerNorm over the last dimension, with its residual add fused in. */
export class LayerNorm {
  constructor(
    private readonly kernels: Kernels,
    readonly gamma: Region, // [dModel] (norm.weight)
    readonly beta: Region, // [dModel] (norm.bias)
    readonly eps: number,
  ) {}

  /** out[rows, dModel] = LayerNorm(x + r) (r null: LayerNorm(x)); `sum` (if given) gets x + r. */
  forward(out: Region, sum: Region | null, x: Region, r: Region | null, rows: number): void {
    this.kernels.layernorm(out, sum, x, r, this.gamma, this.beta, rows, this.gamma.length, this.eps);
  }
}

/**
 * The residual connection around a sublayer, in either order:
 * post-LN (the paper, norm_first false): x = LayerNorm(x + Sublayer(x));
 * pre-LN (norm_first true):             x = x + Sublayer(LayerNorm(x)).
 * Used as `input = r.input(x, rows, s)`, `sublayer(y, input)`, `r.add(x, y, rows)`.
 */
export class Residual {
  constructor(
    private readonly kernels: Kernels,
    readonly norm: LayerNorm,
    private readonly normFirst: boolean,
  ) {}

  /** What the sublayer reads: LayerNorm(x) in pre-LN (in s.h), x itself in post-LN. */
  input(x: Region, rows: number, s: Scratch): Region {
    if (!this.normFirst) return x;
    this.norm.forward(s.h, null, x, null, rows);
    return s.h;
  }

  /** x = x + y (pre-LN) or x = LayerNorm(x + y) (post-LN), y being the sublayer's output. */
  add(x: Region, y: Region, rows: number): void {
    if (this.normFirst) this.kernels.add(x, x, y, rows * this.norm.gamma.length);
    else this.norm.forward(x, null, x, y, rows);
  }
}
