import { WasmformerError } from '../errors.js';
import { size, type ModelConfig, type Slot } from '../families/index.js';
import { parameterCount, readModel, type CheckedModel, type ModelSource } from '../io/index.js';
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
 * Builds the Transformer in the runtime's memory from checked weights, slot by slot as the
 * checkpoint's family maps them. Weights are written once: packed for the matmul, or copied as
 * they are; a matrix two slots share (tied embeddings) is copied once.
 */
export function buildTransformer(rt: Runtime, checked: CheckedModel): Transformer {
  const c = checked.config;
  const b = new Builder(rt, checked);
  const state = new RunState(rt.arena, c);
  const scale = c.scaleEmbedding ? Math.sqrt(c.dModel) : 1;
  const srcPositions = b.positions('src.positions');
  const tgtPositions = b.shared('tgt.positions', 'src.positions') ? srcPositions : b.positions('tgt.positions');
  const srcTable = b.table('src.embedding', 'source embedding');
  const tgtTable = b.shared('tgt.embedding', 'src.embedding') ? srcTable : b.table('tgt.embedding', 'target embedding');

  const encoderLayers = range(c.numEncoderLayers, (i) => new EncoderLayer(
    b.attention(`encoder.${i}.self`, c.encoderHeads, state), b.feedForward('encoder', i, c.encoderFfnDim, state),
    b.residual(`encoder.${i}.norm1`, state), b.residual(`encoder.${i}.norm2`, state), state.encoderKV, state.y,
  ));
  const decoderLayers = range(c.numDecoderLayers, (i) => new DecoderLayer(
    i, b.attention(`decoder.${i}.self`, c.decoderHeads, state), b.attention(`decoder.${i}.cross`, c.decoderHeads, state),
    b.feedForward('decoder', i, c.decoderFfnDim, state),
    b.residual(`decoder.${i}.norm1`, state), b.residual(`decoder.${i}.norm2`, state), b.residual(`decoder.${i}.norm3`, state),
    b.kv(`decoder layer ${i} self-attention cache`), b.kv(`decoder layer ${i} memory`), state.y,
  ));
  return new Transformer(
    c, state,
    new Embedding(rt.kernels, srcTable, c.srcVocabSize, srcPositions, scale),
    new Embedding(rt.kernels, tgtTable, c.tgtVocabSize, tgtPositions, scale),
    encoderLayers, c.finalNorm ? b.layerNorm('encoder.norm') : null,
    decoderLayers, c.finalNorm ? b.layerNorm('decoder.norm') : null,
    b.linear('generator', c.tgtVocabSize, c.dModel, 'generator'),
  );
}

const ACTIVATIONS = { relu: Act.Relu, gelu: Act.Gelu, silu: Act.Silu } as const;

/** Reads slots and writes them into the arena. */
class Builder {
  private readonly c: ModelConfig;

  constructor(
    private readonly rt: Runtime,
    private readonly checked: CheckedModel,
  ) {
    this.c = checked.config;
  }

  /** A slot that checkWeights resolved (required, or absent with a rule that gives it values). */
  private tensor(slot: Slot): Float32Array {
    const data = this.checked.read(slot);
    if (data === null) throw new WasmformerError('BAD_TENSOR', `the model has no values for ${slot}`);
    return data;
  }

  /** Whether slot is the same matrix as other (tied, or both computed the same way). */
  shared(slot: Slot, other: Slot): boolean {
    const a = this.checked.resolved.get(slot)!;
    const b = this.checked.resolved.get(other)!;
    return a.source.sameAs === other || (a.entry === null && b.entry === null) || (a.entry !== null && a.entry === b.entry);
  }

  /** A region holding data as it is. */
  vector(data: Float32Array, label: string): Region {
    const region = this.rt.arena.alloc(data.length, label);
    this.rt.arena.f32().set(data, index(region));
    return region;
  }

  /** An embedding matrix [vocab, d_model] as it is. */
  table(slot: Slot, label: string): Region {
    return this.vector(this.tensor(slot), label);
  }

  /** A Linear from the slots `${prefix}.weight` [n, k] and `${prefix}.bias` [n] (absent: zero), packed through a staging region freed at once. */
  linear(prefix: `${string}` , n: number, k: number, label: string): Linear {
    const { arena, kernels } = this.rt;
    const w = this.tensor(`${prefix}.weight` as Slot);
    const bias = this.checked.read(`${prefix}.bias` as Slot);
    const dest = arena.alloc(kernels.packedLength(n, k), label);
    const mark = arena.mark();
    const stagedW = this.vector(w, `${label} (staging)`);
    const stagedBias = bias ? this.vector(bias, `${label} bias (staging)`) : null;
    const packed = kernels.packInto(dest, stagedW, 0, stagedBias, n, k, k);
    arena.reset(mark);
    return new Linear(kernels, packed);
  }

  /** Multi-head attention: the q, k, v and output projections of the slots at prefix. */
  attention(prefix: `encoder.${number}.self` | `decoder.${number}.${'self' | 'cross'}`, heads: number, state: RunState): MultiHeadAttention {
    const d = this.c.dModel;
    const part = (p: 'q' | 'k' | 'v' | 'o') => this.linear(`${prefix}.${p}`, d, d, `${prefix}.${p}`);
    return new MultiHeadAttention(this.rt.kernels, part('q'), part('k'), part('v'), part('o'), heads, state.attention);
  }

  /** fc1 -> activation -> fc2 of a layer. */
  feedForward(stack: 'encoder' | 'decoder', i: number, ffn: number, state: RunState): FeedForward {
    const d = this.c.dModel;
    const fc1 = this.linear(`${stack}.${i}.fc1`, ffn, d, `${stack}.${i}.fc1`);
    const fc2 = this.linear(`${stack}.${i}.fc2`, d, ffn, `${stack}.${i}.fc2`);
    return new FeedForward(fc1, fc2, ACTIVATIONS[this.c.activation], state.hidden);
  }

  layerNorm(prefix: string): LayerNorm {
    const gamma = this.vector(this.tensor(`${prefix}.weight` as Slot), `${prefix}.weight`);
    const beta = this.vector(this.tensor(`${prefix}.bias` as Slot), `${prefix}.bias`);
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

  /** [maxLen, dModel]: the stored table's first rows, or the family's sinusoid. */
  positions(slot: 'src.positions' | 'tgt.positions'): Region {
    const { maxLen, dModel } = this.c;
    const stored = this.checked.read(slot);
    return this.vector(stored ?? sinusoid(maxLen, dModel, this.c.sinusoid), slot === 'src.positions' ? 'source positions' : 'target positions');
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
  let floats = 0;
  for (const entry of checked.tensors.values()) floats += size(entry.shape);
  const rt = await createRuntime({ ...options, initialBytes: options.initialBytes ?? estimateBytes(checked.config, floats) });
  return new Model(rt, buildTransformer(rt, checked), parameterCount(checked.resolved));
}

/**
 * Bytes the model will take: its tensors as float32 (packed weights take the same, plus a few
 * panels' padding), caches and scratch. Reserved up front so that loading grows the memory once.
 */
function estimateBytes(c: ModelConfig, tensorFloats: number): number {
  const rows = c.maxLen * c.dModel;
  const caches = 4 * rows * c.numDecoderLayers;
  const heads = Math.max(c.encoderHeads, c.decoderHeads);
  const scratch = 11 * rows + c.maxLen * (Math.max(c.encoderFfnDim, c.decoderFfnDim) + c.tgtVocabSize + heads * c.maxLen);
  return 4 * (tensorFloats + caches + scratch);
}
