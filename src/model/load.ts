import { WasmformerError } from '../errors.js';
import { size, type ModelConfig, type Slot } from '../families/index.js';
import { parameterCount, readModel, type CheckedModel, type ModelSource } from '../io/index.js';
import { MultiHeadAttention } from '../layers/attention.js';
import { Embedding, sinusoid, type EmbeddingTable } from '../layers/embedding.js';
import { FeedForward } from '../layers/feedforward.js';
import { Linear } from '../layers/linear.js';
import { LayerNorm, Residual } from '../layers/norm.js';
import { Act, createRuntime, index, MAX_Q8_K, MAX_THREADS, type Quantized, type Region, type Runtime, type RuntimeOptions } from '../runtime/index.js';
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
export function buildTransformer(rt: Runtime, checked: CheckedModel, dtype: Dtype = 'f32'): Transformer {
  const c = checked.config;
  const b = new Builder(rt, checked, dtype);
  const widest = Math.max(c.dModel, c.encoderFfnDim, c.decoderFfnDim);
  const state = new RunState(rt.arena, c, dtype === 'q8' ? rt.kernels.quantizedRowBytes(widest) : 0);
  const scale = c.scaleEmbedding ? Math.sqrt(c.dModel) : 1;
  const srcPositions = b.positions('src.positions');
  const tgtPositions = b.shared('tgt.positions', 'src.positions') ? srcPositions : b.positions('tgt.positions');
  const generator = b.linear('generator', c.tgtVocabSize, c.dModel, 'generator');
  // A generator tied to the target embedding is the table too: the matrix is held once.
  const tgtTable: EmbeddingTable = b.shared('generator.weight', 'tgt.embedding') ? { packed: generator.weight } : b.table('tgt.embedding', 'target embedding');
  const srcTable = b.shared('src.embedding', 'tgt.embedding') ? tgtTable : b.table('src.embedding', 'source embedding');

  const encoderLayers = range(c.numEncoderLayers, (i) => new EncoderLayer(
    b.attention(`encoder.${i}.self`, c.encoderHeads), b.feedForward('encoder', i, c.encoderFfnDim),
    b.residual(`encoder.${i}.norm1`), b.residual(`encoder.${i}.norm2`),
  ));
  const decoderLayers = range(c.numDecoderLayers, (i) => new DecoderLayer(
    i, b.attention(`decoder.${i}.self`, c.decoderHeads), b.attention(`decoder.${i}.cross`, c.decoderHeads),
    b.feedForward('decoder', i, c.decoderFfnDim),
    b.residual(`decoder.${i}.norm1`), b.residual(`decoder.${i}.norm2`), b.residual(`decoder.${i}.norm3`), c.dModel,
  ));
  return new Transformer(
    c, state, rt.arena,
    new Embedding(rt.kernels, srcTable, c.srcVocabSize, c.dModel, srcPositions, scale),
    new Embedding(rt.kernels, tgtTable, c.tgtVocabSize, c.dModel, tgtPositions, scale),
    encoderLayers, c.finalNorm ? b.layerNorm('encoder.norm') : null,
    decoderLayers, c.finalNorm ? b.layerNorm('decoder.norm') : null,
    generator,
  );
}

const ACTIVATIONS = { relu: Act.Relu, gelu: Act.Gelu, silu: Act.Silu } as const;

/** How a model's matrices (projections, feed-forward, embeddings, generator) run; norms, biases and positions stay float32. */
export type Dtype = 'f32' | 'q8';

/** Reads slots and writes them into the arena. */
class Builder {
  private readonly c: ModelConfig;

  constructor(
    private readonly rt: Runtime,
    private readonly checked: CheckedModel,
    private readonly dtype: Dtype,
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

  /** A matrix slot as int8 with its row scales: as the file stores them, or quantized from its floats. */
  private quantized(slot: Slot): Quantized {
    const q = this.checked.readQuantized(slot);
    if (q === null) throw new WasmformerError('BAD_TENSOR', `the model has no values for ${slot}`);
    return q;
  }

  /** A region holding int8 values as they are. */
  private bytes(values: Int8Array, label: string): Region {
    const region = this.rt.arena.alloc(Math.ceil(values.length / 4), label);
    this.rt.arena.u8().set(new Uint8Array(values.buffer, values.byteOffset, values.length), region.ptr);
    return region;
  }

  /** An embedding matrix [vocab, d_model]: as it is, or as int8 rows with their scales. */
  table(slot: Slot, label: string): EmbeddingTable {
    if (this.dtype === 'f32') return { values: this.vector(this.tensor(slot), label), scales: null };
    const q = this.quantized(slot);
    return { values: this.bytes(q.values, label), scales: this.vector(q.scales, `${label} scales`) };
  }

  /** A Linear from the slots `${prefix}.weight` [n, k] and `${prefix}.bias` [n] (absent: zero), packed through staging regions freed at once. */
  linear(prefix: `${string}` , n: number, k: number, label: string): Linear {
    const { arena, kernels } = this.rt;
    const weight = `${prefix}.weight` as Slot;
    const bias = this.checked.read(`${prefix}.bias` as Slot);
    const q8 = this.dtype === 'q8';
    const dest = arena.alloc(q8 ? kernels.packedLengthQ8(n, k) : kernels.packedLength(n, k), label);
    const mark = arena.mark();
    const stagedBias = bias ? this.vector(bias, `${label} bias (staging)`) : null;
    const q = q8 ? this.quantized(weight) : null;
    const w = q ? null : this.tensor(weight);
    // PACK_ROWS rows at a time, so that staging holds those rows only, not the whole matrix (a
    // generator's is vocab x d_model: 119 MB in float32 at opus-mt's shape, pages the model would
    // keep touched for nothing). PACK_ROWS is a multiple of the panel width, so each slice's
    // panels start where the whole matrix's would.
    for (let j0 = 0; j0 < n; j0 += PACK_ROWS) {
      const rows = Math.min(PACK_ROWS, n - j0);
      const to = slice(dest, j0 === 0 ? 0 : q8 ? kernels.packedLengthQ8(j0, k) : kernels.packedLength(j0, k));
      const b = stagedBias ? slice(stagedBias, j0) : null;
      const rowMark = arena.mark();
      if (q) {
        const values = this.bytes(q.values.subarray(j0 * k, (j0 + rows) * k), `${label} (staging)`);
        kernels.packQ8Into(to, values, this.vector(q.scales.subarray(j0, j0 + rows), `${label} scales (staging)`), b, rows, k);
      } else {
        kernels.packInto(to, this.vector(w!.subarray(j0 * k, (j0 + rows) * k), `${label} (staging)`), 0, b, rows, k, k);
      }
      arena.reset(rowMark);
    }
    arena.reset(mark);
    return new Linear(kernels, { region: dest, n, k, dtype: this.dtype });
  }

  /** Multi-head attention: the q, k, v and output projections of the slots at prefix. */
  attention(prefix: `encoder.${number}.self` | `decoder.${number}.${'self' | 'cross'}`, heads: number): MultiHeadAttention {
    const d = this.c.dModel;
    const part = (p: 'q' | 'k' | 'v' | 'o') => this.linear(`${prefix}.${p}`, d, d, `${prefix}.${p}`);
    return new MultiHeadAttention(this.rt.kernels, part('q'), part('k'), part('v'), part('o'), heads);
  }

  /** fc1 -> activation -> fc2 of a layer. */
  feedForward(stack: 'encoder' | 'decoder', i: number, ffn: number): FeedForward {
    const d = this.c.dModel;
    const fc1 = this.linear(`${stack}.${i}.fc1`, ffn, d, `${stack}.${i}.fc1`);
    const fc2 = this.linear(`${stack}.${i}.fc2`, d, ffn, `${stack}.${i}.fc2`);
    return new FeedForward(fc1, fc2, ACTIVATIONS[this.c.activation]);
  }

  layerNorm(prefix: string): LayerNorm {
    const gamma = this.vector(this.tensor(`${prefix}.weight` as Slot), `${prefix}.weight`);
    const beta = this.vector(this.tensor(`${prefix}.bias` as Slot), `${prefix}.bias`);
    return new LayerNorm(this.rt.kernels, gamma, beta, this.c.layerNormEps);
  }

  residual(normPrefix: string): Residual {
    return new Residual(this.rt.kernels, this.layerNorm(normPrefix), this.c.normFirst);
  }

  /** [maxLen, dModel]: the stored table's first rows, or the family's sinusoid. */
  positions(slot: 'src.positions' | 'tgt.positions'): Region {
    const { maxLen, dModel } = this.c;
    const stored = this.checked.read(slot);
    return this.vector(stored ?? sinusoid(maxLen, dModel, this.c.sinusoid), slot === 'src.positions' ? 'source positions' : 'target positions');
  }
}

/** Rows that Builder.linear stages at once: a multiple of the panel width (8, assembly/matmul.ts and quantized.ts). */
const PACK_ROWS = 1024;

/** The part of a region from element `at` on. */
function slice(r: Region, at: number): Region {
  return { ptr: r.ptr + at * 4, length: r.length - at, label: r.label };
}

function range<T>(n: number, f: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

export interface LoadOptions extends RuntimeOptions {
  /**
   * 'f32': float32 weights (int8 ones times their scales); 'q8': int8 matrices with one scale per
   * output row, as a quantized folder stores them or quantized as they load. The default: 'q8'
   * when the folder stores int8 matrices (`wasmformer quantize`), else 'f32'.
   */
  dtype?: Dtype;
  /** Called while the weights download: bytes so far, and the total (0 when unknown). */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
}

export const LOAD_OPTIONS: OptionSpec = {
  build: ["'auto', 'simd' or 'relaxed'", (v) => v === 'auto' || v === 'simd' || v === 'relaxed'],
  dtype: ["'f32' or 'q8'", (v) => v === 'f32' || v === 'q8'],
  wasm: ['a path, a URL, an ArrayBuffer or a Uint8Array', (v) =>
    typeof v === 'string' || v instanceof URL || v instanceof ArrayBuffer || v instanceof Uint8Array],
  initialBytes: ['a number of bytes', (v) => Number.isSafeInteger(v) && (v as number) >= 0],
  threads: [`'auto' or an integer in [1, ${MAX_THREADS}]`, (v) => v === 'auto' || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_THREADS)],
  onProgress: ['a function', isFunction],
};

/**
 * Loads a model folder (config.json + model.safetensors) from a path, a URL, or bytes in memory.
 * Everything is checked before the first byte is written to WebAssembly memory.
 */
export async function loadModel(source: ModelSource, options: LoadOptions = {}): Promise<Model> {
  checkOptions(options, LOAD_OPTIONS);
  return modelOf(await readModel(source, { onProgress: options.onProgress }), options);
}

/** The model of checked weights, in a runtime of its own (loadModel past reading; options already checked). */
export async function modelOf(checked: CheckedModel, options: LoadOptions): Promise<Model> {
  let floats = 0;
  for (const entry of checked.tensors.values()) floats += size(entry.shape);
  const dtype = options.dtype ?? (checked.quantized ? 'q8' : 'f32');
  if (dtype === 'q8') checkQ8Inputs(checked.config);
  const rt = await createRuntime({ ...options, initialBytes: options.initialBytes ?? estimateBytes(checked.config, floats, dtype) });
  return new Model(rt, buildTransformer(rt, checked, dtype), parameterCount(checked.resolved));
}

/** Every matmul input fits the int8 kernels' exact sums (assembly/quantized.ts), else an UNSUPPORTED error naming the width. */
function checkQ8Inputs(c: ModelConfig): void {
  const widths: [string, number][] = [['d_model', c.dModel], ['the encoder\'s feed-forward', c.encoderFfnDim], ['the decoder\'s feed-forward', c.decoderFfnDim]];
  for (const [what, k] of widths) {
    if (k > MAX_Q8_K) {
      throw new WasmformerError('UNSUPPORTED', `dtype 'q8': ${what} (${k}) is wider than the ${MAX_Q8_K} inputs whose int8 sums stay exact; load this model with dtype 'f32'`);
    }
  }
}

/**
 * Bytes the model will take: its tensors as float32 (packed weights take the same, plus a few
 * panels' padding), the encoder's scratch, and room for a first decoding. Reserved up front so
 * that loading grows the memory once.
 */
function estimateBytes(c: ModelConfig, tensorFloats: number, dtype: Dtype): number {
  const rows = c.maxLen * c.dModel;
  const scratch = 8 * rows + c.maxLen * (c.encoderFfnDim + c.encoderHeads * c.maxLen);
  // A first decoding's blocks and step scratch on the heap beside them.
  const decoding = c.maxLen * (2 * c.dModel * c.numDecoderLayers + c.tgtVocabSize / 8);
  // q8: a byte per weight, and the float vectors and scales beside them.
  const weights = dtype === 'q8' ? tensorFloats * 1.05 : 4 * tensorFloats;
  return weights + 4 * (scratch + decoding);
}
