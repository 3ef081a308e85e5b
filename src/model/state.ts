import type { ModelConfig } from '../families/index.js';
import type { KV } from '../layers/attention.js';
import type { Scratch } from '../layers/scratch.js';
import type { Arena, Heap, QuantizedRows, Region } from '../runtime/index.js';

/**
 * The encoder's activations, allocated once at load for the longest source (max_len rows).
 * A decoding step's are a StepScratch, sized for its rows.
 */
export class RunState implements Scratch {
  readonly srcIds: Region; // [maxLen] int32 source ids
  readonly srcPositions: Region; // [maxLen] int32 0, 1, ..., maxLen - 1
  readonly srcMask: Region; // [maxLen] 0, or -Infinity where the source id is pad_id
  readonly memory: Region; // [maxLen, dModel] the encoder's stream, then its output
  readonly h: Region; // [maxLen, dModel] LayerNorm(x), the sublayer input in pre-LN
  readonly y: Region; // [maxLen, dModel] a sublayer's output
  readonly encoderKV: KV; // [maxLen, dModel] x2 the encoder self-attention's keys and values
  readonly q: Region; // [maxLen, dModel] queries
  readonly ctx: Region; // [maxLen, dModel] attention context
  readonly probs: Region; // [heads, maxLen, maxLen] attention weights
  readonly hidden: Region; // [maxLen, ffnDim] the feed-forward's inner activations
  readonly quantized: QuantizedRows; // [maxLen, rowBytes] bytes, [maxLen] scales: q8 matmul inputs

  /** rowBytes: one quantized input row of the widest matmul input (0: a float model). */
  constructor(arena: Arena, c: ModelConfig, readonly rowBytes: number) {
    const rows = c.maxLen * c.dModel;
    this.srcIds = arena.alloc(c.maxLen, 'source ids');
    this.srcPositions = arena.alloc(c.maxLen, 'source positions');
    arena.writeI32(this.srcPositions, 0, Array.from({ length: c.maxLen }, (_, i) => i));
    this.srcMask = arena.alloc(c.maxLen, 'source padding mask');
    this.memory = arena.alloc(rows, 'memory');
    this.h = arena.alloc(rows, 'normalised input');
    this.y = arena.alloc(rows, 'sublayer output');
    this.encoderKV = { k: arena.alloc(rows, 'encoder keys'), v: arena.alloc(rows, 'encoder values') };
    this.q = arena.alloc(rows, 'queries');
    this.ctx = arena.alloc(rows, 'attention context');
    this.probs = arena.alloc(c.encoderHeads * c.maxLen * c.maxLen, 'encoder attention weights');
    this.hidden = arena.alloc(c.maxLen * c.encoderFfnDim, 'encoder feed-forward hidden');
    this.quantized = {
      values: arena.alloc(Math.ceil((c.maxLen * rowBytes) / 4), 'encoder quantized inputs'),
      scales: arena.alloc(rowBytes > 0 ? c.maxLen : 0, 'encoder quantized input scales'),
    };
  }
}

/** What a StepScratch must hold: rows per step, positions per row, source positions. */
export interface StepSize {
  readonly rows: number;
  readonly positions: number;
  readonly sources: number;
}

/**
 * A decoding step's activations for up to `size.rows` rows, on the model's heap: the token ids
 * and their positions, the decoder's stream, the sublayers' scratch, the logits, the new
 * positions' keys and values (until their rows keep them), and the key tables through which each
 * row finds its own past and its source. Reused step after step; replaced by a larger one when a
 * call needs more.
 */
export class StepScratch implements Scratch {
  readonly ids: Region; // [rows] int32 the tokens fed
  readonly positions: Region; // [rows] int32 each token's target position
  readonly newKeys: Region; // [rows, layers, 2, dModel] the keys and values of the positions fed
  readonly x: Region; // [rows, dModel] the decoder's stream
  readonly h: Region;
  readonly y: Region;
  readonly q: Region;
  readonly ctx: Region;
  readonly hidden: Region; // [rows, decoderFfnDim]
  readonly probs: Region; // [heads, max(positions, sources)] one row's attention weights
  readonly logits: Region; // [rows, tgtVocab]
  readonly selfTables: Region; // int32 [rows, positions] offsets of each row's past positions
  readonly selfCounts: Region; // int32 [rows]
  readonly crossTables: Region; // int32 [rows, sources] offsets of each row's source positions
  readonly crossCounts: Region; // int32 [rows]
  readonly quantized: QuantizedRows; // [rows, rowBytes] bytes, [rows] scales: q8 matmul inputs
  private readonly regions: Region[];

  /** rowBytes: one quantized input row of the widest matmul input (0: a float model). */
  constructor(
    private readonly heap: Heap,
    c: ModelConfig,
    readonly size: StepSize,
    rowBytes: number,
  ) {
    const { rows, positions, sources } = size;
    const alloc = (length: number, label: string): Region => heap.alloc(length, label);
    this.regions = [
      (this.ids = alloc(rows, 'step token ids')),
      (this.positions = alloc(rows, 'step positions')),
      (this.newKeys = alloc(rows * 2 * c.dModel * c.numDecoderLayers, 'step keys and values')),
      (this.x = alloc(rows * c.dModel, 'decoder stream')),
      (this.h = alloc(rows * c.dModel, 'step normalised input')),
      (this.y = alloc(rows * c.dModel, 'step sublayer output')),
      (this.q = alloc(rows * c.dModel, 'step queries')),
      (this.ctx = alloc(rows * c.dModel, 'step attention context')),
      (this.hidden = alloc(rows * c.decoderFfnDim, 'decoder feed-forward hidden')),
      (this.probs = alloc(c.decoderHeads * Math.max(positions, sources), 'decoder attention weights')),
      (this.logits = alloc(rows * c.tgtVocabSize, 'logits')),
      (this.selfTables = alloc(rows * positions, 'self-attention key tables')),
      (this.selfCounts = alloc(rows, 'self-attention key counts')),
      (this.crossTables = alloc(rows * sources, 'cross-attention key tables')),
      (this.crossCounts = alloc(rows, 'cross-attention key counts')),
    ];
    this.quantized = {
      values: alloc(Math.ceil((rows * rowBytes) / 4), 'step quantized inputs'),
      scales: alloc(rowBytes > 0 ? rows : 0, 'step quantized input scales'),
    };
    this.regions.push(this.quantized.values, this.quantized.scales);
  }

  /** Whether it holds a step of this size. */
  fits(size: StepSize): boolean {
    return size.rows <= this.size.rows && size.positions <= this.size.positions && size.sources <= this.size.sources;
  }

  release(): void {
    for (const r of this.regions) this.heap.free(r);
  }
}
