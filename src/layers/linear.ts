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

  /** out[rows, outFeatures] at row outRow of out (contiguous rows) from x[rows, inFeatures] at row xRow. */
  forward(out: Region, outRow: number, x: Region, xRow: number, rows: number, act: Act = Act.None): void {
    const { n, k } = this.weight;
    this.kernels.matmul(out, outRow * n, x, xRow * k, this.weight, rows, k, n, act);
  }
}
