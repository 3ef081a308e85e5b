import type { Kernels, Packed, Region } from '../runtime/index.js';

/**
 * An embedding matrix [vocab, dModel] (embedding.weight): float32, or int8 with one scale per
 * row; or, tied to the generator, the generator's packed matrix (either dtype), so it is held once.
 */
export type EmbeddingTable =
  | { readonly values: Region; readonly scales: Region | null } // scales [vocab] (q8), or null (float32)
  | { readonly packed: Packed };

/** Token embedding times sqrt(d_model) (when scale_embedding) plus the position's encoding. */
export class Embedding {
  constructor(
    private readonly kernels: Kernels,
    readonly table: EmbeddingTable,
    readonly vocab: number,
    private readonly dModel: number,
    private readonly positions: Region, // [maxLen, dModel] (source and target may share one)
    private readonly scale: number,
  ) {}

  /** out[n, dModel] for the int32 ids[n], row i at the int32 position positions[i]. */
  forward(out: Region, ids: Region, positions: Region, n: number): void {
    const t = this.table;
    if ('packed' in t) this.kernels.embedPacked(out, ids, t.packed, this.positions, positions, n, this.dModel, this.scale);
    else if (t.scales) this.kernels.embedQ8(out, ids, t.values, t.scales, this.vocab, this.positions, positions, n, this.dModel, this.scale);
    else this.kernels.embed(out, ids, t.values, this.vocab, this.positions, positions, n, this.dModel, this.scale);
  }
}

/**
 * The paper's sinusoid [maxLen, dModel], each value computed in float64 and rounded once:
 * 'interleaved' (the tutorial's) PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same);
 * 'halves' (Marian's) the h = ceil(d/2) sines first, then the d - h cosines, angle k of either
 * pos / 10000^(2k/d).
 */
export function sinusoid(maxLen: number, dModel: number, layout: 'interleaved' | 'halves'): Float32Array {
  const out = new Float32Array(maxLen * dModel);
  const half = Math.ceil(dModel / 2);
  for (let pos = 0; pos < maxLen; pos++) {
    const row = out.subarray(pos * dModel, (pos + 1) * dModel);
    for (let k = 0; k < half; k++) {
      const angle = pos / Math.pow(10000, (2 * k) / dModel);
      if (layout === 'interleaved') {
        row[2 * k] = Math.sin(angle);
        if (2 * k + 1 < dModel) row[2 * k + 1] = Math.cos(angle);
      } else {
        row[k] = Math.sin(angle);
        if (half + k < dModel) row[half + k] = Math.cos(angle);
      }
    }
  }
  return out;
}
