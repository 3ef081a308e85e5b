// What every checkpoint family's config normalises into, and the table of where a family
// stores each of the model's parameters. The Transformer reads these and nothing family-specific.

/** The checkpoint families wasmformer loads. */
export type FamilyName = 'tutorial' | 'marian';

/** The activation of the feed-forward networks ('silu' is Marian's "swish"). */
export type Activation = 'relu' | 'gelu' | 'silu';

/**
 * generate()'s defaults as the checkpoint gives them (Hugging Face's generation_config.json,
 * with GenerationConfig's own defaults for what it leaves out), in transformers' terms.
 */
export interface GenerationDefaults {
  /** The longest sequence, the start token included (null: the model's max_len positions). */
  readonly maxLength: number | null;
  /** The shortest sequence, the start token included: eos is banned before. */
  readonly minLength: number;
  readonly numBeams: number;
  /** Beam scores are the summed log-probabilities over (generated length ** lengthPenalty). */
  readonly lengthPenalty: number;
  /** When beam search stops: true, false (transformers' heuristic) or 'never'. */
  readonly earlyStopping: boolean | 'never';
  readonly numReturnSequences: number;
  /** Token sequences never to generate: the last id of each is banned where the others precede it. */
  readonly badWordsIds: readonly (readonly number[])[];
  /** The id forced as the last token when the length limit is reached (null: none). */
  readonly forcedEosTokenId: number | null;
  /** No n-gram of this size twice (0: off). */
  readonly noRepeatNgramSize: number;
  /** Logits of tokens already in the sequence divided (positive) or multiplied (negative) by it (1: off). */
  readonly repetitionPenalty: number;
  readonly doSample: boolean;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
}

/** transformers' GenerationConfig defaults, the ones wasmformer reads. */
export const GENERATION_DEFAULTS: GenerationDefaults = {
  maxLength: 20, minLength: 0, numBeams: 1, lengthPenalty: 1, earlyStopping: false, numReturnSequences: 1,
  badWordsIds: [], forcedEosTokenId: null, noRepeatNgramSize: 0, repetitionPenalty: 1, doSample: false,
  temperature: 1, topK: 50, topP: 1,
};

/** A model's architecture, whatever its checkpoint family: `model.config`. */
export interface ModelConfig {
  readonly family: FamilyName;
  readonly dModel: number;
  readonly numEncoderLayers: number;
  readonly numDecoderLayers: number;
  readonly encoderHeads: number;
  readonly decoderHeads: number;
  readonly encoderFfnDim: number;
  readonly decoderFfnDim: number;
  readonly activation: Activation;
  /** false: the paper's post-LN, LayerNorm(x + Sublayer(x)); true: pre-LN, x + Sublayer(LayerNorm(x)). */
  readonly normFirst: boolean;
  readonly layerNormEps: number;
  /** Whether a LayerNorm follows each stack (nn.Transformer's encoder.norm and decoder.norm). */
  readonly finalNorm: boolean;
  /** Token embeddings times sqrt(d_model). */
  readonly scaleEmbedding: boolean;
  /**
   * The positions when the checkpoint stores none: the paper's sinusoid with sin and cos
   * interleaved (the tutorial's), or sines in the first half of the vector and cosines in the
   * second (Marian's).
   */
  readonly sinusoid: 'interleaved' | 'halves';
  readonly srcVocabSize: number;
  readonly tgtVocabSize: number;
  /** Positions the model has: the longest source, and the most decoding steps. */
  readonly maxLen: number;
  /** Source positions holding this id are masked out of every attention over the source. */
  readonly padId: number;
  /** The token decoding starts from (the tutorial's bos_id, Hugging Face's decoder_start_token_id). */
  readonly decoderStartId: number;
  readonly eosId: number;
  readonly generation: GenerationDefaults;
}

/** One parameter of the family-agnostic model, as the loader asks for it. */
export type Slot =
  | 'src.embedding' | 'tgt.embedding' | 'src.positions' | 'tgt.positions' | 'generator.weight' | 'generator.bias'
  | `${'encoder' | 'decoder'}.norm.${'weight' | 'bias'}`
  | `encoder.${number}.self.${Projection}.${'weight' | 'bias'}`
  | `decoder.${number}.${'self' | 'cross'}.${Projection}.${'weight' | 'bias'}`
  | `${'encoder' | 'decoder'}.${number}.${'fc1' | 'fc2' | 'norm1' | 'norm2' | 'norm3'}.${'weight' | 'bias'}`
  /** A parameter the family's library has but the model never reads: checked and counted only. */
  | `unused.${string}`;

/** The four projections of an attention: queries, keys, values, output. */
export type Projection = 'q' | 'k' | 'v' | 'o';

/** Where a checkpoint stores one slot, and what its absence means. */
export interface TensorSource {
  /** The tensors that may hold it: the first present is read; any other present must agree in shape. */
  readonly names: readonly string[];
  /** The slot's shape. */
  readonly shape: readonly number[];
  /** The stored tensor's shape when it holds more than this slot (q, k and v stacked in in_proj). */
  readonly stored?: readonly number[];
  /** The slot's first row within the stored tensor. */
  readonly row?: number;
  /**
   * Absent from the checkpoint: 'zero' (a bias), 'computed' (positions: the family's sinusoid),
   * or another slot it is tied to (a generator tied to the target embedding). Undefined: required.
   */
  readonly absent?: 'zero' | 'computed' | Slot;
  /** A position table: stored as [P, d] or [P, 1, d] with P at least the slot's rows; the first rows are used. */
  readonly positions?: boolean;
  /** The same parameter as another slot (one matrix shared): read there, counted once. */
  readonly sameAs?: Slot;
  /** false: a buffer, not a parameter (parameterCount skips it), as the family's own library counts. */
  readonly counted?: boolean;
}

/**
 * Whether a slot is a matrix (an attention projection, fc1 or fc2, an embedding, the generator):
 * what q8 holds as int8 with one scale per row. Vectors (norms, biases) and position tables
 * stay float.
 */
export function isMatrix(s: TensorSource): boolean {
  return s.shape.length === 2 && s.positions !== true;
}

/** Elements of a shape. */
export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
