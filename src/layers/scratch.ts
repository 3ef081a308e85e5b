import type { QuantizedRows, Region } from '../runtime/index.js';

/**
 * The activations of one pass over some rows, which a layer reads and writes within one call
 * and keeps nothing of: the encoder's (RunState) and a decoding step's (StepScratch) are both
 * this, each sized for the rows it runs.
 */
export interface Scratch {
  readonly h: Region; // [rows, dModel] LayerNorm(x), the sublayer input in pre-LN
  readonly y: Region; // [rows, dModel] a sublayer's output
  readonly q: Region; // [rows, dModel] queries
  readonly ctx: Region; // [rows, dModel] the heads' outputs, concatenated
  readonly hidden: Region; // [rows, ffnDim] the feed-forward's inner activations
  readonly probs: Region; // the attention weights of the last call
  readonly quantized: QuantizedRows; // [rows, widest input] a q8 matmul's input, quantized (empty for float models)
}
