import type { AttentionMaps } from '../model/attention-maps.js';
import { index, type Kernels, type Region } from '../runtime/index.js';
import type { Linear } from './linear.js';

/** Keys and values of one attention, row i for position i: each [maxLen, dModel]. */
export interface KV {
  readonly k: Region;
  readonly v: Region;
}

/** Scratch that every attention layer shares (one layer runs at a time). */
export interface AttentionScratch {
  readonly q: Region; // [maxLen, dModel] queries
  readonly ctx: Region; // [maxLen, dModel] heads' outputs, concatenated
  readonly probs: Region; // [nhead, maxLen, maxLen] attention weights of the last call
}

/**
 * torch.nn.MultiheadAttention: in_proj split into its q, k, v parts (packed separately, so keys
 * and values are written straight into a cache row), scaled dot-product attention per head,
 * out_proj. One class for the three uses: encoder self-attention, masked decoder
 * self-attention, encoder-decoder cross-attention.
 */
export class MultiHeadAttention {
  private readonly dK: number;
  private readonly scale: number;

  constructor(
    private readonly kernels: Kernels,
    private readonly wq: Linear,
    private readonly wk: Linear,
    private readonly wv: Linear,
    private readonly wo: Linear, // out_proj
    readonly nhead: number,
    private readonly scratch: AttentionScratch,
  ) {
    this.dK = wq.outFeatures / nhead;
    this.scale = 1 / Math.sqrt(this.dK);
  }

  /**
   * Self-attention of x[rows, dModel] at positions pos..pos+rows: appends x's keys and values to
   * kv at row pos, then attends over rows [0, pos + rows) of kv; causal (the decoder's mask)
   * or not (the encoder's), keyMask (0 or -Infinity per key) over padded sources.
   */
  self(out: Region, x: Region, rows: number, kv: KV, pos: number, causal: boolean, keyMask: Region | null): void {
    this.wk.forward(kv.k, pos, x, 0, rows);
    this.wv.forward(kv.v, pos, x, 0, rows);
    this.attend(out, x, rows, kv, pos + rows, causal ? pos : -1, keyMask);
  }

  /** Cross-attention of x[rows, dModel] over the encoder memory's keys and values in kv. */
  cross(out: Region, x: Region, rows: number, kv: KV, memoryLen: number, memoryMask: Region | null): void {
    this.attend(out, x, rows, kv, memoryLen, -1, memoryMask);
  }

  /** Fills kv with the keys and values of memory[len, dModel]: once per source. */
  remember(kv: KV, memory: Region, len: number): void {
    this.wk.forward(kv.k, 0, memory, 0, len);
    this.wv.forward(kv.v, 0, memory, 0, len);
  }

  /** Hands the weights of the last call, for one query over keyLen keys, to maps. */
  record(maps: AttentionMaps, kind: 'self' | 'cross', layer: number, keyLen: number): void {
    maps.record(kind, layer, this.kernels.arena.f32(), index(this.scratch.probs), keyLen);
  }

  /** out = out_proj(concat_h softmax(q_h k_h^T / sqrt(d_k) + masks) v_h). */
  private attend(out: Region, x: Region, rows: number, kv: KV, keyLen: number, causalOffset: number, keyMask: Region | null): void {
    const { q, ctx, probs } = this.scratch;
    const dModel = this.wq.outFeatures;
    this.wq.forward(q, 0, x, 0, rows);
    this.kernels.attention(
      ctx, 0, q, 0, kv.k, 0, kv.v, 0, probs, rows, keyLen, this.nhead, this.dK,
      dModel, dModel, dModel, dModel, this.scale, causalOffset, keyMask, rows * keyLen,
    );
    this.wo.forward(out, 0, ctx, 0, rows);
  }
}
