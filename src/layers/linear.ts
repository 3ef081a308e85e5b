import { Act, type Kernels, type Packed, type Region } from '../runtime/index.js';
import type { Scratch } from './scratch.js';

/** y = act(x W^T + b), W packed once at load (PyTorch's nn.Linear), float32 or q8. */
export class Linear {
  constructor(
    private readonly kernels: Kernels,
    readonly weight: Packed, // [outFeatures, inFeatures] packed with its bias
  ) {}

  get inFeatures(): number {
    return this.weight.k;
  }

  get outFeatures(): number {
    return this.weight.n;
  }

  /** out[rows, outFeatures] from x[rows, inFeatures], both dense from their first row; a q8 weight quantizes x into s.quantized. */
  forward(out: Region, x: Region, rows: number, s: Scratch, act: Act = Act.None): void {
    this.forwardInto(out, 0, this.weight.n, x, rows, s, act);
  }

  /** The same into rows of out that start at element outAt with a stride of ldo (a block of keys and values). */
  forwardInto(out: Region, outAt: number, ldo: number, x: Region, rows: number, s: Scratch, act: Act = Act.None): void {
    const { k } = this.weight;
    if (this.weight.dtype === 'q8') this.kernels.matmulQ8(out, outAt, x, 0, this.weight, rows, k, ldo, act, s.quantized);
    else this.kernels.matmul(out, outAt, x, 0, this.weight, rows, k, ldo, act);
  }
}
