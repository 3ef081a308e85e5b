// The PyTorch translation tutorial's Seq2SeqTransformer (src_tok_emb, tgt_tok_emb,
// positional_encoding, transformer = torch.nn.Transformer, generator), as shared/spec/model-format.md
// defines its config.json and state dict: the one place that knows its field and tensor names.
import { configError, type Fields } from '../io/config.js';
import { GENERATION_DEFAULTS, type ModelConfig, type Projection, type Slot, type TensorSource } from './architecture.js';
import type { Family } from './index.js';

export const tutorial: Family = {
  name: 'tutorial',
  config,
  tensors,
  contradiction,
  tokenizerFiles: { required: ['tokenizer.json'], optional: [] },
  generationConfig: false,
  fields: { maxLen: 'max_len', padId: 'pad_id', decoderStartId: 'bos_id', eosId: 'eos_id', srcVocabSize: 'src_vocab_size', tgtVocabSize: 'tgt_vocab_size' },
};

/** config.json: every field of the format required, unknown fields ignored. */
function config(f: Fields): ModelConfig {
  const dModel = f.positiveInt('d_model');
  const nhead = f.positiveInt('nhead');
  const numEncoderLayers = f.positiveInt('num_encoder_layers');
  const numDecoderLayers = f.positiveInt('num_decoder_layers');
  const dimFeedforward = f.positiveInt('dim_feedforward');
  const c: ModelConfig = {
    family: 'tutorial',
    dModel,
    numEncoderLayers,
    numDecoderLayers,
    encoderHeads: nhead,
    decoderHeads: nhead,
    encoderFfnDim: dimFeedforward,
    decoderFfnDim: dimFeedforward,
    activation: f.oneOf('activation', ['relu', 'gelu'] as const),
    normFirst: f.bool('norm_first'),
    layerNormEps: f.positiveFloat('layer_norm_eps'),
    finalNorm: f.bool('final_norm'),
    scaleEmbedding: f.bool('scale_embedding'),
    sinusoid: 'interleaved',
    srcVocabSize: f.positiveInt('src_vocab_size'),
    tgtVocabSize: f.positiveInt('tgt_vocab_size'),
    maxLen: f.positiveInt('max_len'),
    padId: f.nonNegativeInt('pad_id'),
    decoderStartId: f.nonNegativeInt('bos_id'),
    eosId: f.nonNegativeInt('eos_id'),
    generation: { ...GENERATION_DEFAULTS, maxLength: null }, // greedy to max_len, as the format's decoding is
  };
  if (c.dModel % nhead !== 0) throw configError(f.file, `d_model (${c.dModel}) is not divisible by nhead (${nhead})`);
  return c;
}

type Stack = 'encoder' | 'decoder';

/** Where nn.Transformer keeps layer i of a stack. */
function layer(stack: Stack, i: number): string {
  return `transformer.${stack}.layers.${i}`;
}

/** Every slot, in checkpoint order. */
function* tensors(c: ModelConfig): Generator<[Slot, TensorSource]> {
  const d = c.dModel;
  const ff = c.encoderFfnDim;
  const one = (name: string, shape: number[]): TensorSource => ({ names: [name], shape });
  /** nn.MultiheadAttention: q, k and v stacked in in_proj_weight [3d, d] and in_proj_bias [3d]. */
  function* attention(prefix: string, slot: `encoder.${number}.self` | `decoder.${number}.${'self' | 'cross'}`): Generator<[Slot, TensorSource]> {
    const parts: Projection[] = ['q', 'k', 'v'];
    for (const [j, p] of parts.entries()) {
      yield [`${slot}.${p}.weight`, { names: [`${prefix}.in_proj_weight`], shape: [d, d], stored: [3 * d, d], row: j * d }];
      yield [`${slot}.${p}.bias`, { names: [`${prefix}.in_proj_bias`], shape: [d], stored: [3 * d], row: j * d }];
    }
    yield [`${slot}.o.weight`, one(`${prefix}.out_proj.weight`, [d, d])];
    yield [`${slot}.o.bias`, one(`${prefix}.out_proj.bias`, [d])];
  }
  function* sublayers(stack: Stack, i: number, norms: number): Generator<[Slot, TensorSource]> {
    const p = layer(stack, i);
    yield [`${stack}.${i}.fc1.weight`, one(`${p}.linear1.weight`, [ff, d])];
    yield [`${stack}.${i}.fc1.bias`, one(`${p}.linear1.bias`, [ff])];
    yield [`${stack}.${i}.fc2.weight`, one(`${p}.linear2.weight`, [d, ff])];
    yield [`${stack}.${i}.fc2.bias`, one(`${p}.linear2.bias`, [d])];
    for (let k = 1; k <= norms; k++) {
      yield [`${stack}.${i}.norm${k as 1 | 2 | 3}.weight`, one(`${p}.norm${k}.weight`, [d])];
      yield [`${stack}.${i}.norm${k as 1 | 2 | 3}.bias`, one(`${p}.norm${k}.bias`, [d])];
    }
  }
  function* finalNorm(stack: Stack): Generator<[Slot, TensorSource]> {
    if (!c.finalNorm) return;
    yield [`${stack}.norm.weight`, one(`transformer.${stack}.norm.weight`, [d])];
    yield [`${stack}.norm.bias`, one(`transformer.${stack}.norm.bias`, [d])];
  }
  yield ['src.embedding', one('src_tok_emb.embedding.weight', [c.srcVocabSize, d])];
  yield ['tgt.embedding', one('tgt_tok_emb.embedding.weight', [c.tgtVocabSize, d])];
  for (let i = 0; i < c.numEncoderLayers; i++) {
    yield* attention(`${layer('encoder', i)}.self_attn`, `encoder.${i}.self`);
    yield* sublayers('encoder', i, 2);
  }
  yield* finalNorm('encoder');
  for (let i = 0; i < c.numDecoderLayers; i++) {
    yield* attention(`${layer('decoder', i)}.self_attn`, `decoder.${i}.self`);
    yield* attention(`${layer('decoder', i)}.multihead_attn`, `decoder.${i}.cross`);
    yield* sublayers('decoder', i, 3);
  }
  yield* finalNorm('decoder');
  yield ['generator.weight', { names: ['generator.weight'], shape: [c.tgtVocabSize, d], absent: 'tgt.embedding' }];
  yield ['generator.bias', { names: ['generator.bias'], shape: [c.tgtVocabSize], absent: 'zero' }];
  // A buffer, not a parameter: one table for both sides, the paper's sinusoid when absent.
  const positions: TensorSource = { names: ['positional_encoding.pos_embedding'], shape: [c.maxLen, d], absent: 'computed', positions: true, counted: false };
  yield ['src.positions', positions];
  yield ['tgt.positions', { ...positions, sameAs: 'src.positions' }];
}

/**
 * Tensors of the model's own stacks that the config says do not exist: layers past
 * num_*_layers, or final norms with final_norm false. The format defines final_norm as "the
 * norms exist and are applied", so such a file and config disagree; ignoring the tensors would
 * run a different model than the one trained (nn.Transformer always applies its final norms).
 */
function contradiction(c: ModelConfig, name: string): string | null {
  const m = /^transformer\.(encoder|decoder)\.layers\.(\d+)\./.exec(name);
  if (m !== null) {
    const [field, count] = m[1] === 'encoder' ? ['num_encoder_layers', c.numEncoderLayers] : ['num_decoder_layers', c.numDecoderLayers];
    if (Number(m[2]) >= count) return `is in ${m[1]} layer ${m[2]}, but the config has ${field} ${count}`;
  }
  if (!c.finalNorm && /^transformer\.(encoder|decoder)\.norm\./.test(name)) {
    return 'is present, but the config has final_norm false (nn.Transformer applies its final norms: set final_norm true)';
  }
  return null;
}
