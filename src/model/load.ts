import { TENSOR, parameterCount, readModel, type CheckedModel, type ModelConfig, type ModelSource } from '../io/index.js';
import { MultiHeadAttention } from '../layers/attention.js';
import { Embedding, sinusoid } from '../layers/embedding.js';
import { FeedForward } from '../layers/feedforward.js';
import { Linear } from '../layers/linear.js';
import { LayerNorm, Residual } from '../layers/norm.js';
import { Act, createRuntime, index, type Region, type Runtime, type RuntimeOptions } from '../runtime/index.js';
import { checkOptions, isFunction, type OptionSpec } from '../options.js';
import { DecoderLayer } from './decoder.js';
import { EncoderLayer } from './encoder.js';
import { Model } from './model.js';
import { RunState } from './state.js';
import { Transformer } from './transformer.js';

/**
 * Builds the Transformer in the runtime's memory from checked weights, mapping checkpoint names
 * to layers one to one. Weights are written once: packed for the matmul, or copied as they are.
 */
export function buildTransformer(rt: Runtime, checked: CheckedModel): Transformer {
  const c = checked.config;
  const b = new Builder(rt, checked);
  const state = new RunState(rt.arena, c);
  const positions = b.positions();
  const scale = c.scaleEmbedding ? Math.sqrt(c.dModel) : 1;
  const tgtTable = checked.read(TENSOR.tgtEmbedding);

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
      i, b.attention(`${p}.self_attn`, state), b.attention(`${p}.multihead_attn`, state), b.feedForward(p, state),
      b.residual(`${p}.norm1`, state), b.residual(`${p}.norm2`, state), b.residual(`${p}.norm3`, state),
      b.kv(`decoder layer ${i} self-attention cache`), b.kv(`decoder layer ${i} memory`), state.y,
    );
  });
  return new Transformer(
    c, state,
    new Embedding(rt.kernels, b.vector(checked.read(TENSOR.srcEmbedding), 'source embedding'), c.srcVocabSize, positions, scale),
    new Embedding(rt.kernels, b.vector(tgtTable, 'target embedding'), c.tgtVocabSize, positions, scale),
    encoderLayers, c.finalNorm ? b.layerNorm('transformer.encoder.norm') : null,
    decoderLayers, c.finalNorm ? b.layerNorm('transformer.decoder.norm') : null,
    b.generator(tgtTable),
  );
}

/** Reads tensors by checkpoint name and writes them into the arena. */
class Builder {
  private readonly c: ModelConfig;

  constructor(
    private readonly rt: Runtime,
    private readonly checked: CheckedModel,
  ) {
    this.c = checked.config;
  }

  private tensor(name: string): Float32Array {
    return this.checked.read(name);
  }

  /** A region holding data as it is. */
  vector(data: Float32Array, label: string): Region {
    const region = this.rt.arena.alloc(data.length, label);
    this.rt.arena.f32().set(data, index(region));
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
    const stored = this.checked.optional.posEmbedding;
    const data = stored ? this.tensor(TENSOR.posEmbedding).subarray(0, maxLen * dModel) : new Float32Array(maxLen * dModel);
    if (!stored) sinusoid(data, maxLen, dModel);
    return this.vector(data, 'positions');
  }

  /** generator.weight, or the target embedding when absent (tied); generator.bias or none. */
  generator(tgtTable: Float32Array): Linear {
    const { generatorWeight, generatorBias } = this.checked.optional;
    const weight = generatorWeight ? this.tensor(TENSOR.generatorWeight) : tgtTable;
    const bias = generatorBias ? this.tensor(TENSOR.generatorBias) : null;
    return this.linear(weight, bias, this.c.tgtVocabSize, this.c.dModel, 'generator');
  }
}

function range<T>(n: number, f: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

export interface LoadOptions extends RuntimeOptions {
  /** Called while the weights download: bytes so far, and the total (0 when unknown). */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
}

export const LOAD_OPTIONS: OptionSpec = {
  build: ["'auto', 'simd' or 'relaxed'", (v) => v === 'auto' || v === 'simd' || v === 'relaxed'],
  wasm: ['a path, a URL, an ArrayBuffer or a Uint8Array', (v) =>
    typeof v === 'string' || v instanceof URL || v instanceof ArrayBuffer || v instanceof Uint8Array],
  initialBytes: ['a number of bytes', (v) => Number.isSafeInteger(v) && (v as number) >= 0],
  onProgress: ['a function', isFunction],
};

/**
 * Loads a model folder (config.json + model.safetensors) from a path, a URL, or bytes in memory.
 * Everything is checked before the first byte is written to WebAssembly memory.
 */
export async function loadModel(source: ModelSource, options: LoadOptions = {}): Promise<Model> {
  checkOptions(options, LOAD_OPTIONS);
  const checked = await readModel(source, { onProgress: options.onProgress });
  const { config, optional, tensors } = checked;
  let floats = 0;
  for (const entry of tensors.values()) floats += entry.shape.reduce((a, b) => a * b, 1);
  const rt = await createRuntime({ ...options, initialBytes: options.initialBytes ?? estimateBytes(config, floats) });
  return new Model(rt, buildTransformer(rt, checked), parameterCount(config, optional));
}

/**
 * Bytes the model will take: its tensors as float32 (packed weights take the same, plus a few
 * panels' padding), caches and scratch. Reserved up front so that loading grows the memory once.
 */
function estimateBytes(c: ModelConfig, tensorFloats: number): number {
  const rows = c.maxLen * c.dModel;
  const caches = 4 * rows * c.numDecoderLayers;
  const scratch = 9 * rows + c.maxLen * (c.dimFeedforward + c.tgtVocabSize + c.nhead * c.maxLen);
  return 4 * (tensorFloats + caches + scratch);
}
