import type { ModelConfig } from '../families/index.js';
import type { AttentionScratch, KV } from '../layers/attention.js';
import type { Arena, Region } from '../runtime/index.js';

/**
 * The activations of one forward pass, allocated once at load for the longest sequence
 * (max_len rows): the decoding loop never allocates. Encoder and decoder share the scratch,
 * as they never run at the same time.
 */
export class RunState {
  readonly srcIds: Region; // [maxLen] int32 source ids
  readonly tgtIds: Region; // [maxLen] int32 target ids
  readonly srcMask: Region; // [maxLen] 0, or -Infinity where the source id is pad_id
  readonly memory: Region; // [maxLen, dModel] the encoder's stream, then its output
  readonly x: Region; // [maxLen, dModel] the decoder's stream
  readonly h: Region; // [maxLen, dModel] LayerNorm(x), the sublayer input in pre-LN
  readonly y: Region; // [maxLen, dModel] a sublayer's output
  readonly encoderKV: KV; // [maxLen, dModel] x2 the encoder self-attention's keys and values
  readonly attention: AttentionScratch; // q, ctx [maxLen, dModel]; probs [heads, maxLen, maxLen]
  readonly hidden: Region; // [maxLen, ffnDim] the feed-forward's inner activations (the wider stack's)
  readonly logits: Region; // [maxLen, tgtVocab]

  constructor(arena: Arena, c: ModelConfig) {
    const rows = c.maxLen * c.dModel;
    this.srcIds = arena.alloc(c.maxLen, 'source ids');
    this.tgtIds = arena.alloc(c.maxLen, 'target ids');
    this.srcMask = arena.alloc(c.maxLen, 'source padding mask');
    this.memory = arena.alloc(rows, 'memory');
    this.x = arena.alloc(rows, 'decoder stream');
    this.h = arena.alloc(rows, 'normalised input');
    this.y = arena.alloc(rows, 'sublayer output');
    this.encoderKV = { k: arena.alloc(rows, 'encoder keys'), v: arena.alloc(rows, 'encoder values') };
    this.attention = {
      q: arena.alloc(rows, 'queries'),
      ctx: arena.alloc(rows, 'attention context'),
      probs: arena.alloc(Math.max(c.encoderHeads, c.decoderHeads) * c.maxLen * c.maxLen, 'attention weights'),
    };
    this.hidden = arena.alloc(c.maxLen * Math.max(c.encoderFfnDim, c.decoderFfnDim), 'feed-forward hidden');
    this.logits = arena.alloc(c.maxLen * c.tgtVocabSize, 'logits');
  }
}
