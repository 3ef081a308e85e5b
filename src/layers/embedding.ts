import type { Kernels, Region } from '../runtime/index.js';

/** Token embedding times sqrt(d_model) (when scale_embedding) plus the position's encoding. */
export class Embedding {
  constructor(
    private readonly kernels: Kernels,
    readonly table: Region, // [vocab, dModel] (embedding.weight)
    readonly vocab: number,
    private readonly positions: Region, // [maxLen, dModel], shared by source and target
    private readonly scale: number,
  ) {}

  /** out[n, dModel] for the int32 ids[n] at positions pos..pos+n. */
  forward(out: Region, ids: Region, n: number, pos: number): void {
    const dModel = this.table.length / this.vocab;
    this.kernels.embed(out, ids, this.table, this.vocab, this.positions, pos * dModel, n, dModel, this.scale);
  }
}

/** The paper's sinusoid: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same). */
export function sinusoid(out: Float32Array, maxLen: number, dModel: number): void {
  for (let pos = 0; pos < maxLen; pos++) {
    for (let i = 0; i < dModel; i += 2) {
      const angle = pos / Math.pow(10000, i / dModel);
      out[pos * dModel + i] = Math.sin(angle);
      if (i + 1 < dModel) out[pos * dModel + i + 1] = Math.cos(angle);
    }
  }
}
