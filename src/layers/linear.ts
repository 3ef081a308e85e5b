import { Act, type Kernels, type Packed, type Region } from '../runtime/index.js';

/** y = act(x W^T + b), W packed once at load (PyTorch's nn.Linear). */
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

  /** out[rows, outFeatures] from x[rows, inFeatures], both dense from their first row. */
  forward(out: Region, x: Region, rows: number, act: Act = Act.None): void {
    const { n, k } = this.weight;
    this.kernels.matmul(out, 0, x, 0, this.weight, rows, k, n, act);
  }

  /** The same into rows of out that start at element outAt with a stride of ldo (a block of keys and values). */
  forwardInto(out: Region, outAt: number, ldo: number, x: Region, rows: number): void {
    const { k } = this.weight;
    this.kernels.matmul(out, outAt, x, 0, this.weight, rows, k, ldo);
  }
}
