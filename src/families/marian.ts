// Hugging Face's MarianMTModel (opus-mt): config.json with "model_type": "marian",
// generation_config.json, and the state dict's names. The one place that knows them.
import { WasmformerError } from '../errors.js';
import type { Fields } from '../io/config.js';
import { GENERATION_DEFAULTS, type Activation, type GenerationDefaults, type ModelConfig, type Projection, type Slot, type TensorSource } from './architecture.js';
import type { Family } from './index.js';

export const marian: Family = {
  name: 'marian',
  config,
  tensors: (c) => tensors(c as MarianConfig),
  contradiction,
  tokenizerFiles: { required: ['source.spm', 'target.spm', 'vocab.json'], optional: ['target_vocab.json', 'tokenizer_config.json'] },
  generationConfig: true,
  fields: {
    maxLen: 'max_position_embeddings', padId: 'pad_token_id', decoderStartId: 'decoder_start_token_id', eosId: 'eos_token_id',
    srcVocabSize: 'vocab_size', tgtVocabSize: 'decoder_vocab_size',
  },
};

/** The architecture, and how Marian shares its embedding matrix. */
export interface MarianConfig extends ModelConfig {
  /** One matrix embeds source and target tokens (model.shared). */
  readonly shareEncoderDecoderEmbeddings: boolean;
  /** The generator is the (decoder's) embedding matrix. */
  readonly tieWordEmbeddings: boolean;
}

/** activation_function values and what runs them ("swish" is SiLU, "gelu" the exact erf form). */
const ACTIVATIONS: Record<string, Activation> = { swish: 'silu', silu: 'silu', gelu: 'gelu', relu: 'relu' };

/**
 * config.json, with MarianConfig's defaults for absent fields as transformers applies them, and
 * generation_config.json (when the folder has one) winning over config.json's generation fields.
 */
function config(f: Fields, generation: Fields | null): MarianConfig {
  const activation = f.has('activation_function') ? f.oneOf('activation_function', Object.keys(ACTIVATIONS)) : 'gelu';
  const share = f.bool('share_encoder_decoder_embeddings', true);
  const vocab = f.positiveInt('vocab_size', 58101);
  const dModel = f.positiveInt('d_model', 1024);
  const c: MarianConfig = {
    family: 'marian',
    dModel,
    numEncoderLayers: f.positiveInt('encoder_layers', 12),
    numDecoderLayers: f.positiveInt('decoder_layers', 12),
    encoderHeads: f.positiveInt('encoder_attention_heads', 16),
    decoderHeads: f.positiveInt('decoder_attention_heads', 16),
    encoderFfnDim: f.positiveInt('encoder_ffn_dim', 4096),
    decoderFfnDim: f.positiveInt('decoder_ffn_dim', 4096),
    activation: ACTIVATIONS[activation],
    normFirst: false,
    layerNormEps: 1e-5, // nn.LayerNorm's default: Marian sets no other
    finalNorm: false,
    scaleEmbedding: f.bool('scale_embedding', false),
    sinusoid: 'halves',
    srcVocabSize: vocab,
    tgtVocabSize: share ? vocab : f.positiveInt('decoder_vocab_size', vocab),
    maxLen: f.positiveInt('max_position_embeddings', 1024),
    padId: f.nonNegativeInt('pad_token_id', 58100),
    decoderStartId: f.nonNegativeInt('decoder_start_token_id', 58100),
    eosId: f.nonNegativeInt('eos_token_id', 0),
    generation: generationDefaults(f, generation),
    shareEncoderDecoderEmbeddings: share,
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
  };
  for (const [field, heads] of [['encoder_attention_heads', c.encoderHeads], ['decoder_attention_heads', c.decoderHeads]] as const) {
    if (dModel % heads !== 0) throw new WasmformerError('BAD_CONFIG', `${f.file}: d_model (${dModel}) is not divisible by ${field} (${heads})`);
  }
  return c;
}

/**
 * generate()'s defaults as transformers takes them: from generation_config.json when the folder
 * has one (what it leaves out gets GenerationConfig's default), else from config.json (with
 * MarianConfig's forced_eos_token_id of 0 when it has none).
 */
function generationDefaults(f: Fields, generation: Fields | null): GenerationDefaults {
  const g = generation ?? f;
  const d = GENERATION_DEFAULTS;
  const earlyStopping = g.has('early_stopping') && g.raw('early_stopping') === 'never' ? 'never' : g.bool('early_stopping', d.earlyStopping as boolean);
  return {
    maxLength: g.positiveInt('max_length', d.maxLength!),
    minLength: g.nonNegativeInt('min_length', d.minLength),
    numBeams: g.positiveInt('num_beams', d.numBeams),
    lengthPenalty: g.finite('length_penalty', d.lengthPenalty),
    earlyStopping,
    numReturnSequences: g.positiveInt('num_return_sequences', d.numReturnSequences),
    badWordsIds: g.idLists('bad_words_ids', []),
    forcedEosTokenId: g.optionalId('forced_eos_token_id', generation === null ? 0 : null),
    noRepeatNgramSize: g.nonNegativeInt('no_repeat_ngram_size', d.noRepeatNgramSize),
    repetitionPenalty: g.positiveFloat('repetition_penalty', d.repetitionPenalty),
    doSample: g.bool('do_sample', d.doSample),
    temperature: g.positiveFloat('temperature', d.temperature),
    topK: g.nonNegativeInt('top_k', d.topK),
    topP: g.positiveFloat('top_p', d.topP),
  };
}

/**
 * The embedding matrices as transformers 5 ties them: with tie_word_embeddings, one matrix
 * (model.shared, or any name it is tied to) for source, target and generator, or with separate
 * vocabularies the decoder's for target and generator; without it, nothing is tied: each side
 * and lm_head have their own, and model.shared is a parameter nothing reads.
 */
function embeddings(c: MarianConfig): [Slot, TensorSource][] {
  const d = c.dModel;
  const src = (names: string[]): TensorSource => ({ names, shape: [c.srcVocabSize, d] });
  const tgt = (names: string[]): TensorSource => ({ names, shape: [c.tgtVocabSize, d] });
  if (!c.tieWordEmbeddings) {
    const own: [Slot, TensorSource][] = [
      ['src.embedding', src(['model.encoder.embed_tokens.weight'])],
      ['tgt.embedding', tgt(['model.decoder.embed_tokens.weight'])],
      ['generator.weight', tgt(['lm_head.weight'])],
    ];
    return c.shareEncoderDecoderEmbeddings ? [['unused.shared', { ...src(['model.shared.weight']), absent: 'zero' }], ...own] : own;
  }
  if (!c.shareEncoderDecoderEmbeddings) {
    return [
      ['src.embedding', src(['model.encoder.embed_tokens.weight'])],
      ['tgt.embedding', tgt(['model.decoder.embed_tokens.weight'])],
      ['generator.weight', { ...tgt([]), sameAs: 'tgt.embedding' }],
    ];
  }
  return [
    ['src.embedding', src(['model.shared.weight', 'model.encoder.embed_tokens.weight', 'model.decoder.embed_tokens.weight'])],
    ['tgt.embedding', { ...src([]), sameAs: 'src.embedding' }],
    ['generator.weight', { ...src([]), sameAs: 'src.embedding' }],
  ];
}

/** Every slot, in the order of the state dict. */
function* tensors(c: MarianConfig): Generator<[Slot, TensorSource]> {
  const d = c.dModel;
  const one = (name: string, shape: number[]): TensorSource => ({ names: [name], shape });
  function* attention(prefix: string, slot: `encoder.${number}.self` | `decoder.${number}.${'self' | 'cross'}`): Generator<[Slot, TensorSource]> {
    const parts: [Projection, string][] = [['q', 'q_proj'], ['k', 'k_proj'], ['v', 'v_proj'], ['o', 'out_proj']];
    for (const [p, name] of parts) {
      yield [`${slot}.${p}.weight`, one(`${prefix}.${name}.weight`, [d, d])];
      yield [`${slot}.${p}.bias`, one(`${prefix}.${name}.bias`, [d])];
    }
  }
  function* norm(prefix: string, slot: `${'encoder' | 'decoder'}.${number}.${'norm1' | 'norm2' | 'norm3'}`): Generator<[Slot, TensorSource]> {
    yield [`${slot}.weight`, one(`${prefix}.weight`, [d])];
    yield [`${slot}.bias`, one(`${prefix}.bias`, [d])];
  }
  function* feedForward(prefix: string, stack: 'encoder' | 'decoder', i: number, ff: number): Generator<[Slot, TensorSource]> {
    yield [`${stack}.${i}.fc1.weight`, one(`${prefix}.fc1.weight`, [ff, d])];
    yield [`${stack}.${i}.fc1.bias`, one(`${prefix}.fc1.bias`, [ff])];
    yield [`${stack}.${i}.fc2.weight`, one(`${prefix}.fc2.weight`, [d, ff])];
    yield [`${stack}.${i}.fc2.bias`, one(`${prefix}.fc2.bias`, [d])];
  }
  yield* embeddings(c);
  const positions = (stack: string): TensorSource => ({ names: [`model.${stack}.embed_positions.weight`], shape: [c.maxLen, d], absent: 'computed', positions: true });
  yield ['src.positions', positions('encoder')];
  yield ['tgt.positions', positions('decoder')];
  for (let i = 0; i < c.numEncoderLayers; i++) {
    const p = `model.encoder.layers.${i}`;
    yield* attention(`${p}.self_attn`, `encoder.${i}.self`);
    yield* norm(`${p}.self_attn_layer_norm`, `encoder.${i}.norm1`);
    yield* feedForward(p, 'encoder', i, c.encoderFfnDim);
    yield* norm(`${p}.final_layer_norm`, `encoder.${i}.norm2`);
  }
  for (let i = 0; i < c.numDecoderLayers; i++) {
    const p = `model.decoder.layers.${i}`;
    yield* attention(`${p}.self_attn`, `decoder.${i}.self`);
    yield* norm(`${p}.self_attn_layer_norm`, `decoder.${i}.norm1`);
    yield* attention(`${p}.encoder_attn`, `decoder.${i}.cross`);
    yield* norm(`${p}.encoder_attn_layer_norm`, `decoder.${i}.norm2`);
    yield* feedForward(p, 'decoder', i, c.decoderFfnDim);
    yield* norm(`${p}.final_layer_norm`, `decoder.${i}.norm3`);
  }
  // A buffer in transformers (not a parameter); zero when absent, as transformers initialises it.
  yield ['generator.bias', { names: ['final_logits_bias'], shape: [c.tgtVocabSize], stored: [1, c.tgtVocabSize], row: 0, absent: 'zero', counted: false }];
}

/**
 * Tensors of a Marian stack that the config says do not exist (layers past its count), or that
 * belong to another family (stack-final norms, layernorm_embedding: mBART and BART have them,
 * Marian never applies them): the file and its config disagree.
 */
function contradiction(c: ModelConfig, name: string): string | null {
  const m = /^model\.(encoder|decoder)\.layers\.(\d+)\./.exec(name);
  if (m !== null) {
    const [field, count] = m[1] === 'encoder' ? ['encoder_layers', c.numEncoderLayers] : ['decoder_layers', c.numDecoderLayers];
    if (Number(m[2]) >= count) return `is in ${m[1]} layer ${m[2]}, but the config has ${field} ${count}`;
  }
  if (/^model\.(encoder|decoder)\.(layer_norm|layernorm_embedding)\./.test(name)) {
    return 'belongs to a model with stack-final or embedding norms (BART, mBART), which Marian does not have';
  }
  return null;
}
