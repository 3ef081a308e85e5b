import { parseConfig, type ModelConfig } from '../io/config.js';
import { parseSafetensors, readF32, type TensorEntry } from '../io/safetensors.js';
import { readModelFiles } from '../io/source.js';
import { checkWeights } from '../io/weights.js';
import { MultiHeadAttention } from '../layers/attention.js';
import { Embedding, sinusoid } from '../layers/embedding.js';
import { FeedForward } from '../layers/feedforward.js';
import { Linear } from '../layers/linear.js';
import { LayerNorm, Residual } from '../layers/norm.js';
import { Act, createRuntime, type Region, type Runtime, type RuntimeOptions } from '../runtime/index.js';
import { DecoderLayer } from './decoder.js';
import { EncoderLayer } from './encoder.js';
import { Model } from './model.js';
import { RunState } from './state.js';
import { Transformer } from './transformer.js';

/** Checked tensors of a model file: `checkWeights` has vouched for every name and shape read here. */
export interface CheckedWeights {
  readonly bytes: Uint8Array;
  readonly tensors: Map<string, TensorEntry>;
}

/**
 * Builds the Transformer in the runtime's memory from checked weights, mapping checkpoint names
 * to layers one to one. Weights are written once: packed for the matmul, or copied as they are.
 */
export function buildTransformer(rt: Runtime, c: ModelConfig, weights: CheckedWeights): { model: Transformer; parameters: number } {
  const b = new Builder(rt, c, weights);
  const state = new RunState(rt.arena, c);
  const positions = b.positions();
  const scale = c.scaleEmbedding ? Math.sqrt(c.dModel) : 1;
  const tgtTable = b.tensor('tgt_tok_emb.embedding.weight');

  const encoderLayers = range(c.numEncoderLayers, (i) => {
    const p = `transformer.encoder.layers.${i}`;
    return new EncoderLayer(
      b.attention(`${p}.self_attn`, state), b.feedForward(p, state),
      b.residual(`${p}.norm1`, state), b.residual(`${p}.norm2`, state), state.encoderKV, state.y,
    );
  });
  const decoderLayers = range(c.numDecoderLayers, (i) => {
    const p = `transformer.decoder.layers.${i}`;
    return new DecoderLayer(
      b.attention(`${p}.self_attn`, state), b.attention(`${p}.multihead_attn`, state), b.feedForward(p, state),
      b.residual(`${p}.norm1`, state), b.residual(`${p}.norm2`, state), b.residual(`${p}.norm3`, state),
      b.kv(`decoder layer ${i} self-attention cache`), b.kv(`decoder layer ${i} memory`), state.y,
    );
  });
  const model = new Transformer(
    c, state,
    new Embedding(rt.kernels, b.vector(b.tensor('src_tok_emb.embedding.weight'), 'source embedding'), c.srcVocabSize, positions, scale),
    new Embedding(rt.kernels, b.vector(tgtTable, 'target embedding'), c.tgtVocabSize, positions, scale),
    encoderLayers, c.finalNorm ? b.layerNorm('transformer.encoder.norm') : null,
    decoderLayers, c.finalNorm ? b.layerNorm('transformer.decoder.norm') : null,
    b.generator(tgtTable),
  );
  return { model, parameters: b.parameters };
}

/** Reads tensors by checkpoint name and writes them into the arena, counting parameters. */
class Builder {
  parameters = 0;

  constructor(
    private readonly rt: Runtime,
    private readonly c: ModelConfig,
    private readonly weights: CheckedWeights,
  ) {}

  /** The float32 contents of a tensor (widened from float16 / bfloat16). */
  tensor(name: string, parameter = true): Float32Array {
    const data = readF32(this.weights.bytes, this.weights.tensors.get(name)!);
    if (parameter) this.parameters += data.length;
    return data;
  }

  has(name: string): boolean {
    return this.weights.tensors.has(name);
  }

  /** A region holding data as it is. */
  vector(data: Float32Array, label: string): Region {
    const region = this.rt.arena.alloc(data.length, label);
    this.rt.arena.f32().set(data, region.ptr >> 2);
    return region;
  }

  /** A Linear from w [n, k] and bias [n], packed through a staging region freed at once. */
  linear(w: Float32Array, bias: Float32Array | null, n: number, k: number, label: string): Linear {
    const { arena, kernels } = this.rt;
    const dest = arena.alloc(kernels.packedLength(n, k), label);
    const mark = arena.mark();
    const stagedW = this.vector(w, `${label} (staging)`);
    const stagedBias = bias ? this.vector(bias, `${label} bias (staging)`) : null;
    const packed = kernels.packInto(dest, stagedW, 0, stagedBias, n, k, k);
    arena.reset(mark);
    return new Linear(kernels, packed);
  }

  /** nn.MultiheadAttention at prefix: in_proj split into q, k, v rows, and out_proj. */
  attention(prefix: string, state: RunState): MultiHeadAttention {
    const d = this.c.dModel;
    const w = this.tensor(`${prefix}.in_proj_weight`);
    const bias = this.tensor(`${prefix}.in_proj_bias`);
    const part = (i: number, name: string) =>
      this.linear(w.subarray(i * d * d, (i + 1) * d * d), bias.subarray(i * d, (i + 1) * d), d, d, `${prefix} ${name}`);
    const out = this.linear(this.tensor(`${prefix}.out_proj.weight`), this.tensor(`${prefix}.out_proj.bias`), d, d, `${prefix}.out_proj`);
    return new MultiHeadAttention(this.rt.kernels, part(0, 'q'), part(1, 'k'), part(2, 'v'), out, this.c.nhead, state.attention);
  }

  /** linear1 -> activation -> linear2 of the layer at prefix. */
  feedForward(prefix: string, state: RunState): FeedForward {
    const { dModel, dimFeedforward } = this.c;
    const linear = (name: string, n: number, k: number) =>
      this.linear(this.tensor(`${prefix}.${name}.weight`), this.tensor(`${prefix}.${name}.bias`), n, k, `${prefix}.${name}`);
    const act = this.c.activation === 'gelu' ? Act.Gelu : Act.Relu;
    return new FeedForward(linear('linear1', dimFeedforward, dModel), linear('linear2', dModel, dimFeedforward), act, state.hidden);
  }

  layerNorm(prefix: string): LayerNorm {
    const gamma = this.vector(this.tensor(`${prefix}.weight`), `${prefix}.weight`);
    const beta = this.vector(this.tensor(`${prefix}.bias`), `${prefix}.bias`);
    return new LayerNorm(this.rt.kernels, gamma, beta, this.c.layerNormEps);
  }

  residual(normPrefix: string, state: RunState): Residual {
    return new Residual(this.rt.kernels, this.layerNorm(normPrefix), this.c.normFirst, state.h);
  }

  /** Keys and values for max_len positions. */
  kv(label: string): { k: Region; v: Region } {
    const rows = this.c.maxLen * this.c.dModel;
    return { k: this.rt.arena.alloc(rows, `${label} keys`), v: this.rt.arena.alloc(rows, `${label} values`) };
  }

  /** [maxLen, dModel]: the stored positional_encoding.pos_embedding rows, or the sinusoid. */
  positions(): Region {
    const { maxLen, dModel } = this.c;
    const name = 'positional_encoding.pos_embedding';
    const data = this.has(name) ? this.tensor(name, false).subarray(0, maxLen * dModel) : new Float32Array(maxLen * dModel);
    if (!this.has(name)) sinusoid(data, maxLen, dModel);
    return this.vector(data, 'positions');
  }

  /** generator.weight, or the target embedding when absent (tied); generator.bias or none. */
  generator(tgtTable: Float32Array): Linear {
    const weight = this.has('generator.weight') ? this.tensor('generator.weight') : tgtTable;
    const bias = this.has('generator.bias') ? this.tensor('generator.bias') : null;
    return this.linear(weight, bias, this.c.tgtVocabSize, this.c.dModel, 'generator');
  }
}

function range<T>(n: number, f: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

export type ModelSource = string | URL | { config: unknown; weights: ArrayBuffer | Uint8Array };

export interface LoadOptions extends RuntimeOptions {
  /** Called while the weights download: bytes so far, and the total (0 when unknown). */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
}

/**
 * Loads a model folder (config.json + model.safetensors) from a path, a URL, or bytes in memory.
 * Everything is checked before the first byte is written to WebAssembly memory.
 */
export async function loadModel(source: ModelSource, options: LoadOptions = {}): Promise<Model> {
  const files = await readModelFiles(source, { onProgress: options.onProgress });
  const config = parseConfig(files.config, files.configFile);
  const tensors = parseSafetensors(files.weights, files.weightsFile);
  checkWeights(config, tensors, files.weightsFile);
  const rt = await createRuntime({ ...options, initialBytes: options.initialBytes ?? estimateBytes(config, files.weights.length) });
  const { model, parameters } = buildTransformer(rt, config, { bytes: files.weights, tensors });
  return new Model(rt, model, parameters);
}

/** Weights as float32 plus the caches and scratch: reserved up front so loading grows once. */
function estimateBytes(c: ModelConfig, fileBytes: number): number {
  const rows = c.maxLen * c.dModel;
  const caches = 4 * rows * c.numDecoderLayers;
  const scratch = 9 * rows + c.maxLen * (c.dimFeedforward + c.tgtVocabSize + c.nhead * c.maxLen);
  return 4 * (caches + scratch) + 2 * fileBytes;
}
