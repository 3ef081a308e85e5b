import { WasmformerError } from '../errors.js';
import type { ModelConfig } from '../io/config.js';
import { describe } from '../io/describe.js';

/**
 * The attention weights of a greedy decoding, recorded on request (pass one as
 * `generate(src, { attention })`): per decoder layer and head, the cross-attention over the
 * source [steps, srcLen] and the masked self-attention over the target [steps, steps].
 * Row t belongs to the step that produced token t. Filled as decoding goes, so `onToken` can
 * draw the rows so far.
 */
export class AttentionMaps {
  /** Decoding steps recorded so far. */
  steps = 0;
  /** Source length of the decoding recorded. */
  srcLen = 0;
  private nhead = 0;
  private maxLen = 0;
  private crossWeights: Float32Array[] = []; // [layer] -> [nhead, maxLen, srcLen]
  private selfWeights: Float32Array[] = []; // [layer] -> [nhead, maxLen, maxLen]

  /** Cross-attention of `layer`'s `head`: [steps, srcLen], row-major. */
  cross(layer: number, head: number): Float32Array {
    this.check('cross', layer, head);
    const rows = this.maxLen * this.srcLen;
    return this.crossWeights[layer].subarray(head * rows, head * rows + this.steps * this.srcLen);
  }

  /** Masked self-attention of `layer`'s `head`: [steps, steps], row-major (zeros above the diagonal). */
  self(layer: number, head: number): Float32Array {
    this.check('self', layer, head);
    const rows = this.maxLen * this.maxLen;
    const all = this.selfWeights[layer].subarray(head * rows, head * rows + this.steps * this.maxLen);
    const out = new Float32Array(this.steps * this.steps);
    for (let t = 0; t < this.steps; t++) out.set(all.subarray(t * this.maxLen, t * this.maxLen + this.steps), t * this.steps);
    return out;
  }

  /** A layer and a head of the recording, or a BAD_ARGUMENT error saying which exist. */
  private check(kind: 'cross' | 'self', layer: number, head: number): void {
    const layers = this.crossWeights.length;
    if (layers === 0) throw new WasmformerError('BAD_ARGUMENT', `${kind}: nothing recorded yet (pass this AttentionMaps as generate's attention option)`);
    if (!Number.isInteger(layer) || layer < 0 || layer >= layers) {
      throw new WasmformerError('BAD_ARGUMENT', `${kind}: layer must be an integer in [0, ${layers}), got ${describe(layer)}`);
    }
    if (!Number.isInteger(head) || head < 0 || head >= this.nhead) {
      throw new WasmformerError('BAD_ARGUMENT', `${kind}: head must be an integer in [0, ${this.nhead}), got ${describe(head)}`);
    }
  }

  /** Starts a new recording: sized once per decoding, not per step. */
  begin(c: ModelConfig, srcLen: number): void {
    this.steps = 0;
    this.srcLen = srcLen;
    this.nhead = c.nhead;
    this.maxLen = c.maxLen;
    this.crossWeights = Array.from({ length: c.numDecoderLayers }, () => new Float32Array(c.nhead * c.maxLen * srcLen));
    this.selfWeights = Array.from({ length: c.numDecoderLayers }, () => new Float32Array(c.nhead * c.maxLen * c.maxLen));
  }

  /** Keeps one step's weights of a layer: probs holds [nhead, keyLen] at memory[at]. */
  record(kind: 'self' | 'cross', layer: number, memory: Float32Array, at: number, keyLen: number): void {
    const into = kind === 'cross' ? this.crossWeights[layer] : this.selfWeights[layer];
    const rowLen = kind === 'cross' ? this.srcLen : this.maxLen;
    for (let h = 0; h < this.nhead; h++) {
      into.set(memory.subarray(at + h * keyLen, at + (h + 1) * keyLen), (h * this.maxLen + this.steps) * rowLen);
    }
  }
}
