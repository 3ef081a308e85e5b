import { WasmformerError } from '../errors.js';
import type { ModelConfig } from '../families/index.js';
import { describe } from '../io/describe.js';

/** The weights one decoding step recorded, every decoder layer and head. */
export interface AttentionStep {
  /** [layers, nhead, srcLen]: cross-attention over the source. */
  readonly cross: Float32Array;
  /** [layers, nhead, step + 1]: masked self-attention over the target so far. */
  readonly self: Float32Array;
}

/**
 * The attention weights of a greedy decoding, recorded on request (pass one as
 * `generate(src, { attention })`): per decoder layer and head, the cross-attention over the
 * source [steps, srcLen] and the masked self-attention over the target [steps, steps].
 * Row t belongs to the step that produced token t; the step that produced eos is recorded too.
 * Filled as decoding goes, so `onToken` can draw the rows so far. It holds what the steps
 * recorded and nothing more.
 */
export class AttentionMaps {
  /** Source length of the decoding recorded. */
  srcLen = 0;
  private layers = 0;
  private nhead = 0;
  private recorded: AttentionStep[] = [];

  /** Decoding steps recorded so far. */
  get steps(): number {
    return this.recorded.length;
  }

  /** Cross-attention of `layer`'s `head`: [steps, srcLen], row-major (a fresh array). */
  cross(layer: number, head: number): Float32Array {
    this.check('cross', layer, head);
    const n = this.srcLen;
    const out = new Float32Array(this.steps * n);
    this.recorded.forEach((step, t) => {
      const at = (layer * this.nhead + head) * n;
      out.set(step.cross.subarray(at, at + n), t * n);
    });
    return out;
  }

  /** Masked self-attention of `layer`'s `head`: [steps, steps], row-major (zeros above the diagonal). */
  self(layer: number, head: number): Float32Array {
    this.check('self', layer, head);
    const steps = this.steps;
    const out = new Float32Array(steps * steps);
    this.recorded.forEach((step, t) => {
      const at = (layer * this.nhead + head) * (t + 1);
      out.set(step.self.subarray(at, at + t + 1), t * steps);
    });
    return out;
  }

  /** The steps recorded from `from` on: what a worker sends to the page's AttentionMaps. */
  stepsFrom(from: number): AttentionStep[] {
    return this.recorded.slice(from);
  }

  /** Appends a step recorded elsewhere (a worker's), after begin(). */
  addStep(step: AttentionStep): void {
    const t = this.steps;
    const size = this.layers * this.nhead;
    if (size === 0 || step.cross.length !== size * this.srcLen || step.self.length !== size * (t + 1)) {
      throw new WasmformerError('BAD_ARGUMENT', `addStep: step ${t} does not have this recording's layers, heads and source length`);
    }
    this.recorded.push(step);
  }

  /** Starts a new recording of a decoding of config c over srcLen source positions. */
  begin(c: Pick<ModelConfig, 'numDecoderLayers' | 'decoderHeads'>, srcLen: number): void {
    this.srcLen = srcLen;
    this.layers = c.numDecoderLayers;
    this.nhead = c.decoderHeads;
    this.recorded = [];
  }

  /** Opens the next step's record; the decoder layers then fill it with record(). */
  startStep(): void {
    const size = this.layers * this.nhead;
    const t = this.steps;
    this.recorded.push({ cross: new Float32Array(size * this.srcLen), self: new Float32Array(size * (t + 1)) });
  }

  /** Keeps the current step's weights of a layer: probs holds [nhead, keyLen] at memory[at]. */
  record(kind: 'self' | 'cross', layer: number, memory: Float32Array, at: number, keyLen: number): void {
    const step = this.recorded[this.steps - 1];
    const into = kind === 'cross' ? step.cross : step.self;
    into.set(memory.subarray(at, at + this.nhead * keyLen), layer * this.nhead * keyLen);
  }

  /** A layer and a head of the recording, or a BAD_ARGUMENT error saying which exist. */
  private check(kind: 'cross' | 'self', layer: number, head: number): void {
    if (this.layers === 0) throw new WasmformerError('BAD_ARGUMENT', `${kind}: nothing recorded yet (pass this AttentionMaps as generate's attention option)`);
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.layers) {
      throw new WasmformerError('BAD_ARGUMENT', `${kind}: layer must be an integer in [0, ${this.layers}), got ${describe(layer)}`);
    }
    if (!Number.isInteger(head) || head < 0 || head >= this.nhead) {
      throw new WasmformerError('BAD_ARGUMENT', `${kind}: head must be an integer in [0, ${this.nhead}), got ${describe(head)}`);
    }
  }
}
