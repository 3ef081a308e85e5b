import type { ModelConfig } from '../families/index.js';
import type { Embedding } from '../layers/embedding.js';
import type { Linear } from '../layers/linear.js';
import type { LayerNorm } from '../layers/norm.js';
import type { Region } from '../runtime/index.js';
import type { AttentionMaps } from './attention-maps.js';
import type { DecoderLayer } from './decoder.js';
import type { EncoderLayer } from './encoder.js';
import type { RunState } from './state.js';

/**
 * The encoder-decoder of "Attention Is All You Need", Figure 1, over regions of one memory.
 * Its two verbs: `encode` a source once, then `decode` target positions, any number at a time,
 * each decoder layer caching its keys and values so a step costs one position's work.
 * Ids go in through state.srcIds / state.tgtIds; logits come out in state.logits.
 */
export class Transformer {
  private memoryLen = 0;
  private memoryMask: Region | null = null;

  constructor(
    readonly config: ModelConfig,
    readonly state: RunState,
    readonly srcTokEmb: Embedding,
    readonly tgtTokEmb: Embedding,
    readonly encoderLayers: EncoderLayer[],
    readonly encoderNorm: LayerNorm | null,
    readonly decoderLayers: DecoderLayer[],
    readonly decoderNorm: LayerNorm | null,
    readonly generator: Linear,
  ) {}

  /** memory = Encoder(src) for state.srcIds[0, srcLen); `padded` when state.srcMask hides some. */
  encode(srcLen: number, padded: boolean): void {
    const { memory, srcIds, srcMask } = this.state;
    this.memoryMask = padded ? srcMask : null;
    this.memoryLen = srcLen;
    // Input embedding * sqrt(d_model) + positional encoding
    this.srcTokEmb.forward(memory, srcIds, srcLen, 0);
    // N x (self-attention, feed-forward)
    for (const layer of this.encoderLayers) layer.forward(memory, srcLen, this.memoryMask);
    this.encoderNorm?.forward(memory, null, memory, null, srcLen);
    // Every decoder layer's cross-attention keys and values, once per source
    for (const layer of this.decoderLayers) layer.remember(memory, srcLen);
  }

  /**
   * Decodes state.tgtIds[0, rows) at target positions pos..pos+rows (positions before pos are
   * in the caches) and writes the logits of the last `logitRows` of them to state.logits.
   * With maps (one row at a time), every decoder layer's attention weights are recorded.
   */
  decode(rows: number, pos: number, logitRows: number, maps: AttentionMaps | null = null): void {
    const { x, tgtIds, logits } = this.state;
    // Output embedding * sqrt(d_model) + positional encoding
    this.tgtTokEmb.forward(x, tgtIds, rows, pos);
    // N x (masked self-attention, cross-attention over memory, feed-forward)
    for (const layer of this.decoderLayers) layer.forward(x, rows, pos, this.memoryLen, this.memoryMask, maps);
    this.decoderNorm?.forward(x, null, x, null, rows);
    // Linear (the generator): logits over the target vocabulary
    this.generator.forward(logits, 0, x, rows - logitRows, logitRows);
  }
}
