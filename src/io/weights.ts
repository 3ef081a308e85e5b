import { WasmformerError } from '../errors.js';
import type { ModelConfig } from './config.js';
import type { TensorEntry } from './safetensors.js';

/** The model's tensors outside the layer stacks, named as PyTorch's Seq2SeqTransformer saves them. */
export const TENSOR = {
  srcEmbedding: 'src_tok_emb.embedding.weight',
  tgtEmbedding: 'tgt_tok_emb.embedding.weight',
  posEmbedding: 'positional_encoding.pos_embedding',
  encoderNormWeight: 'transformer.encoder.norm.weight',
  encoderNormBias: 'transformer.encoder.norm.bias',
  decoderNormWeight: 'transformer.decoder.norm.weight',
  decoderNormBias: 'transformer.decoder.norm.bias',
  generatorWeight: 'generator.weight',
  generatorBias: 'generator.bias',
} as const;

type WeightOrBias = 'weight' | 'bias';
type AttentionTensor = 'in_proj_weight' | 'in_proj_bias' | `out_proj.${WeightOrBias}`;
type FeedForwardTensor = `${'linear1' | 'linear2'}.${WeightOrBias}`;
/** A tensor of one encoder layer, relative to `transformer.encoder.layers.{i}.` */
export type EncoderLayerTensor = `self_attn.${AttentionTensor}` | FeedForwardTensor | `${'norm1' | 'norm2'}.${WeightOrBias}`;
/** A tensor of one decoder layer: self_attn is masked self-attention, multihead_attn is cross-attention. */
export type DecoderLayerTensor =
  | `${'self_attn' | 'multihead_attn'}.${AttentionTensor}`
  | FeedForwardTensor
  | `${'norm1' | 'norm2' | 'norm3'}.${WeightOrBias}`;

/** `transformer.encoder.layers.{i}.{tensor}` */
export function encoderLayerName(i: number, tensor: EncoderLayerTensor): string {
  return `transformer.encoder.layers.${i}.${tensor}`;
}

/** `transformer.decoder.layers.{i}.{tensor}` */
export function decoderLayerName(i: number, tensor: DecoderLayerTensor): string {
  return `transformer.decoder.layers.${i}.${tensor}`;
}

/** A parameter tensor of the model format; optional ones have a documented default when absent. */
export interface ExpectedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly optional: boolean;
}

/**
 * The model's parameters, in checkpoint order, for this config. The positional-encoding buffer
 * is not among them: its row count is a range (>= max_len), checked apart by checkWeights.
 * The list grows with the layer counts: call it for a config that checkWeights accepted.
 */
export function expectedTensors(c: ModelConfig): ExpectedTensor[] {
  return [...eachTensor(c)];
}

/** The same list, one at a time: checkWeights stops early on a config no file can satisfy. */
function* eachTensor(c: ModelConfig): Generator<ExpectedTensor> {
  const d = c.dModel;
  const tensor = (name: string, shape: number[], optional = false): ExpectedTensor => ({ name, shape, optional });
  function* attention(prefix: string): Generator<ExpectedTensor> {
    yield tensor(`${prefix}.in_proj_weight`, [3 * d, d]); // q, k, v stacked
    yield tensor(`${prefix}.in_proj_bias`, [3 * d]);
    yield tensor(`${prefix}.out_proj.weight`, [d, d]);
    yield tensor(`${prefix}.out_proj.bias`, [d]);
  }
  function* feedForward(prefix: string): Generator<ExpectedTensor> {
    yield tensor(`${prefix}.linear1.weight`, [c.dimFeedforward, d]);
    yield tensor(`${prefix}.linear1.bias`, [c.dimFeedforward]);
    yield tensor(`${prefix}.linear2.weight`, [d, c.dimFeedforward]);
    yield tensor(`${prefix}.linear2.bias`, [d]);
  }
  function* norm(prefix: string): Generator<ExpectedTensor> {
    yield tensor(`${prefix}.weight`, [d]);
    yield tensor(`${prefix}.bias`, [d]);
  }
  yield tensor(TENSOR.srcEmbedding, [c.srcVocabSize, d]);
  yield tensor(TENSOR.tgtEmbedding, [c.tgtVocabSize, d]);
  for (let i = 0; i < c.numEncoderLayers; i++) {
    const layer = `transformer.encoder.layers.${i}`;
    yield* attention(`${layer}.self_attn`);
    yield* feedForward(layer);
    yield* norm(`${layer}.norm1`);
    yield* norm(`${layer}.norm2`);
  }
  if (c.finalNorm) yield* norm('transformer.encoder.norm');
  for (let i = 0; i < c.numDecoderLayers; i++) {
    const layer = `transformer.decoder.layers.${i}`;
    yield* attention(`${layer}.self_attn`);
    yield* attention(`${layer}.multihead_attn`);
    yield* feedForward(layer);
    yield* norm(`${layer}.norm1`);
    yield* norm(`${layer}.norm2`);
    yield* norm(`${layer}.norm3`);
  }
  if (c.finalNorm) yield* norm('transformer.decoder.norm');
  yield tensor(TENSOR.generatorWeight, [c.tgtVocabSize, d], true); // absent: tied to tgtEmbedding
  yield tensor(TENSOR.generatorBias, [c.tgtVocabSize], true); // absent: zero
}

/** How many tensors a file needs for this config (an encoder layer has 12, a decoder layer 18). */
function requiredCount(c: ModelConfig): number {
  return 2 + 12 * c.numEncoderLayers + 18 * c.numDecoderLayers + (c.finalNorm ? 4 : 0);
}

/** Which optional tensors a checked file holds. */
export interface OptionalTensors {
  /** positional_encoding.pos_embedding; absent: the paper's sinusoid. */
  readonly posEmbedding: boolean;
  /** generator.weight; absent: tied to tgt_tok_emb.embedding.weight. */
  readonly generatorWeight: boolean;
  /** generator.bias; absent: zero. */
  readonly generatorBias: boolean;
}

const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/**
 * Checks a parsed safetensors file against the config: every required tensor present, every
 * tensor the model reads (required, or optional and present) of the right shape and a float
 * dtype. Errors are BAD_TENSOR naming the file and the tensor. Tensors the format does not name
 * are ignored, except where they contradict the config (see checkNoContradiction).
 */
export function checkWeights(c: ModelConfig, entries: ReadonlyMap<string, TensorEntry>, file: string): OptionalTensors {
  const fail = (message: string): never => {
    throw new WasmformerError('BAD_TENSOR', `${file}: ${message}`);
  };
  // The walk stops at the first missing tensor, so a config claiming 2^53 layers ends at once.
  for (const t of eachTensor(c)) {
    const entry = entries.get(t.name);
    if (entry === undefined) {
      if (t.optional) continue;
      const needs = requiredCount(c);
      const counts = needs > entries.size ? ` (the config needs ${needs} tensors, the file has ${entries.size})` : '';
      return fail(`missing tensor ${JSON.stringify(t.name)} [${t.shape.join(', ')}]${counts}`);
    }
    checkFloat(entry, fail);
    if (!sameShape(entry.shape, t.shape)) {
      fail(`tensor ${JSON.stringify(t.name)} has shape [${entry.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
    }
  }
  const pos = entries.get(TENSOR.posEmbedding);
  if (pos !== undefined) checkPosEmbedding(c, pos, fail);
  checkNoContradiction(c, entries, fail);
  return {
    posEmbedding: pos !== undefined,
    generatorWeight: entries.has(TENSOR.generatorWeight),
    generatorBias: entries.has(TENSOR.generatorBias),
  };
}

function checkFloat(entry: TensorEntry, fail: (m: string) => never): void {
  if (!FLOAT_DTYPES.includes(entry.dtype)) {
    fail(`tensor ${JSON.stringify(entry.name)} has dtype ${entry.dtype}, expected F32, F16 or BF16`);
  }
}

/** [P, d_model] or, as the tutorial's buffer is, [P, 1, d_model]; its first max_len rows are used. */
function checkPosEmbedding(c: ModelConfig, entry: TensorEntry, fail: (m: string) => never): void {
  checkFloat(entry, fail);
  const s = entry.shape;
  const ok = (s.length === 2 || (s.length === 3 && s[1] === 1)) && s[s.length - 1] === c.dModel && s[0] >= c.maxLen;
  if (!ok) {
    fail(`tensor ${JSON.stringify(entry.name)} has shape [${s.join(', ')}], expected [P, ${c.dModel}] or ` +
      `[P, 1, ${c.dModel}] with P >= max_len (${c.maxLen})`);
  }
}

/**
 * Tensors of the model's own stacks that the config says do not exist: layers past
 * num_*_layers, or final norms with final_norm false. The format defines final_norm as "the
 * norms exist and are applied", so such a file and config disagree; ignoring the tensors would
 * run a different model than the one trained (nn.Transformer always applies its final norms).
 */
function checkNoContradiction(c: ModelConfig, entries: ReadonlyMap<string, TensorEntry>, fail: (m: string) => never): void {
  for (const name of entries.keys()) {
    const layer = /^transformer\.(encoder|decoder)\.layers\.(\d+)\./.exec(name);
    if (layer !== null) {
      const [field, count] = layer[1] === 'encoder'
        ? ['num_encoder_layers', c.numEncoderLayers]
        : ['num_decoder_layers', c.numDecoderLayers];
      if (Number(layer[2]) >= count) {
        fail(`tensor ${JSON.stringify(name)} is in ${layer[1]} layer ${layer[2]}, but the config has ${field} ${count}`);
      }
    }
    if (!c.finalNorm && /^transformer\.(encoder|decoder)\.norm\./.test(name)) {
      fail(`tensor ${JSON.stringify(name)} is present, but the config has final_norm false ` +
        '(nn.Transformer applies its final norms: set final_norm true)');
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The number of parameters, as PyTorch counts them (a tied generator weight once, the
 * positional-encoding buffer not at all). Which optional tensors exist comes from checkWeights.
 */
export function parameterCount(c: ModelConfig, present: Pick<OptionalTensors, 'generatorWeight' | 'generatorBias'>): number {
  let n = 0;
  for (const t of expectedTensors(c)) {
    if (t.name === TENSOR.generatorWeight && !present.generatorWeight) continue;
    if (t.name === TENSOR.generatorBias && !present.generatorBias) continue;
    n += t.shape.reduce((a, b) => a * b, 1);
  }
  return n;
}
