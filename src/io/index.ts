import { WasmformerError } from '../errors.js';
import { familyOf, isMatrix, parseConfig, size, type ModelConfig, type Slot } from '../families/index.js';
import type { Quantized } from '../runtime/kernels.js';
import { firstNonFinite, quantizeMatrix } from '../runtime/quantize.js';
import { jsonObject } from './config.js';
import { parseSafetensors, readF32, safetensorsHeaderBytes, type TensorEntry } from './safetensors.js';
import { readGenerationConfig, readModelConfig, readModelWeights, type ModelSource, type ReadOptions } from './source.js';
import { isTorchFile, parseTorchZip, torchHeadBytes } from './torch.js';
import { checkWeights, scaleName, type Resolved, type ResolvedSlot } from './weights.js';

/** Bytes that tell torch.save's files (a zip, or the legacy pickle's magic) from safetensors. */
const TORCH_SIGNATURE = 14;

export { parseConfig, type ModelConfig } from '../families/index.js';
export {
  encodeSafetensors, f32Bytes, parseSafetensors, readF32, safetensorsHeaderBytes, safetensorsMetadata, type Dtype, type TensorData, type TensorEntry,
} from './safetensors.js';
export {
  CONFIG_FILE, GENERATION_FILE, WEIGHTS_FILE, WEIGHTS_FILES, isModelBytes, readFile, readGenerationConfig, readModelConfig, readModelFile,
  readModelWeights, readOptionalFile,
  type FileContents, type HeadCheck, type ModelBytes, type ModelFileUrls, type ModelSource, type ReadFileOptions, type ReadOptions,
} from './source.js';
export { isTorchFile, isTorchZip, parseTorchZip } from './torch.js';
export { checkWeights, expectedTensors, parameterCount, scaleName, type ExpectedTensor, type Resolved, type ResolvedSlot } from './weights.js';

/** A model whose files were read and checked completely: what remains cannot fail. */
export interface CheckedModel {
  readonly config: ModelConfig;
  /** Every slot of the model and the tensor that holds it. */
  readonly resolved: Resolved;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  /** Whether some matrix is stored as int8 (a folder `wasmformer quantize` wrote): it loads as q8 unless asked otherwise. */
  readonly quantized: boolean;
  /**
   * A slot's values as a fresh Float32Array (widened from F16 or BF16, or int8 times its row
   * scales; its rows of a larger tensor; a position table's first max_len rows), or null when it
   * is absent and its `absent` rule says zero or computed.
   */
  read(slot: Slot): Float32Array | null;
  /** A matrix slot as int8 with one scale per row (quantizeTensor of its rows), or null as read gives it. */
  readQuantized(slot: Slot): Quantized | null;
  /** A stored tensor whole, as float32 (I8 times its scales). */
  readTensor(entry: TensorEntry): Float32Array;
  /**
   * Rows [row, row + rows) of a stored matrix (all of them by default) as int8 with their
   * scales: an I8 tensor's own bytes and scales (no float copy), or floats quantized by
   * quantizeMatrix, as q8 loads them. A weight or scale that is not finite is BAD_TENSOR
   * naming the file and the tensor.
   */
  quantizeTensor(entry: TensorEntry, row?: number, rows?: number): Quantized;
}

/**
 * Reads a model from a folder, a URL, its files' URLs or bytes, and checks config and tensors
 * against each other: config.json (and generation_config.json) first, then the weights' header
 * as soon as it arrives (a wrong file or a wrong shape fails before the data downloads), then
 * the whole file.
 */
export async function readModel(source: ModelSource, options: ReadOptions = {}): Promise<CheckedModel> {
  const { data: json, file: configFile } = options.config ?? await readModelConfig(source);
  const family = familyOf(jsonObject(json, configFile), configFile);
  const generation = family.generationConfig ? await readGenerationConfig(source) : null;
  const config = parseConfig(json, configFile, generation === null ? undefined : { json: generation.data, file: generation.file });
  const head = (bytes: Uint8Array, size: number | null, file: string): number => {
    if (bytes.length < TORCH_SIGNATURE && bytes.length !== size) return TORCH_SIGNATURE;
    if (isTorchFile(bytes)) return torchHeadBytes(bytes, size, file); // its zip directory is at its end
    const needed = safetensorsHeaderBytes(bytes, size, file);
    if (needed > bytes.length) return needed;
    checkWeights(config, parseSafetensors(bytes, file, size), file);
    return 0;
  };
  const { data: weights, file } = await readModelWeights(source, { onProgress: options.onProgress, head });
  // By what the file is, not by its name: a torch.save file is one whatever it is called.
  const tensors = isTorchFile(weights) ? parseTorchZip(weights, file) : parseSafetensors(weights, file);
  return new Checkpoint(config, checkWeights(config, tensors, file), tensors, weights, file);
}

/** A checked file's tensors, read on demand from its bytes. */
class Checkpoint implements CheckedModel {
  readonly quantized: boolean;

  constructor(
    readonly config: ModelConfig,
    readonly resolved: Resolved,
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    private readonly bytes: Uint8Array,
    private readonly file: string,
  ) {
    this.quantized = [...resolved.values()].some((r) => r.entry?.dtype === 'I8');
  }

  private readonly quantizedRows = new Map<string, Quantized>();
  private shared: Set<string> | null = null;

  /** The stored matrices (name:row) that more than one slot reads. */
  private sharedRows(): Set<string> {
    if (this.shared === null) {
      const seen = new Set<string>();
      this.shared = new Set();
      for (const slot of this.resolved.keys()) {
        const r = this.stored(slot);
        if (r === null || !isMatrix(r.source)) continue;
        const key = `${r.entry.name}:${r.source.row ?? 0}`;
        if (seen.has(key)) this.shared.add(key);
        seen.add(key);
      }
    }
    return this.shared;
  }

  read(slot: Slot): Float32Array | null {
    const r = this.stored(slot);
    if (r === null) return null;
    const all = this.readTensor(r.entry);
    const n = size(r.source.shape);
    const at = r.source.positions ? 0 : (r.source.row ?? 0) * (n / r.source.shape[0]);
    return at === 0 && n === all.length ? all : all.subarray(at, at + n);
  }

  readQuantized(slot: Slot): Quantized | null {
    const r = this.stored(slot);
    if (r === null) return null;
    if (!isMatrix(r.source)) throw new WasmformerError('BAD_TENSOR', `${this.file}: ${slot} is not a matrix: it stays float`);
    // A tied matrix (Marian's embeddings and generator) is quantized once, and kept for its other slots.
    const key = `${r.entry.name}:${r.source.row ?? 0}`;
    let q = this.quantizedRows.get(key);
    if (q === undefined) {
      q = this.quantizeTensor(r.entry, r.source.row ?? 0, r.source.shape[0]);
      if (this.sharedRows().has(key)) this.quantizedRows.set(key, q);
    }
    return q;
  }

  readTensor(entry: TensorEntry): Float32Array {
    if (entry.dtype !== 'I8') return readF32(this.bytes, entry, this.file);
    const [values, scales] = [this.int8(entry), this.scales(entry)];
    const cols = values.length / scales.length;
    const out = new Float32Array(values.length);
    for (let i = 0; i < scales.length; i++) {
      for (let j = i * cols; j < (i + 1) * cols; j++) out[j] = values[j] * scales[i]; // exact in a double, rounded once
    }
    return out;
  }

  quantizeTensor(entry: TensorEntry, row = 0, rows = entry.shape[0]): Quantized {
    const cols = size(entry.shape) / entry.shape[0];
    if (entry.dtype === 'I8') {
      return { values: this.int8(entry).subarray(row * cols, (row + rows) * cols), scales: this.scales(entry).subarray(row, row + rows) };
    }
    const x = readF32(this.bytes, entry, this.file).subarray(row * cols, (row + rows) * cols);
    const q = quantizeMatrix(x, rows, cols);
    if (q === null) {
      const bad = firstNonFinite(x);
      throw this.notFinite(entry.name, row * cols + bad, x[bad], "int8 weights (dtype 'q8') cannot hold");
    }
    return q;
  }

  /** The slot's stored tensor, following a tie to another slot; null when it is zero or computed. */
  private stored(slot: Slot): (ResolvedSlot & { entry: TensorEntry }) | null {
    const r = this.resolved.get(slot);
    if (r === undefined) throw new WasmformerError('BAD_TENSOR', `${this.file}: the model has no ${slot}`);
    if (r.entry !== null) return r as ResolvedSlot & { entry: TensorEntry };
    const tied = r.source.absent;
    return typeof tied === 'string' && tied !== 'zero' && tied !== 'computed' ? this.stored(tied) : null;
  }

  /** An I8 tensor's values: a view of the file's bytes. */
  private int8(entry: TensorEntry): Int8Array {
    return new Int8Array(this.bytes.buffer, this.bytes.byteOffset + entry.begin, entry.end - entry.begin);
  }

  /** An I8 tensor's row scales (checkWeights found them), each finite. */
  private scales(entry: TensorEntry): Float32Array {
    const name = scaleName(entry.name);
    const scales = readF32(this.bytes, this.tensors.get(name)!, this.file);
    const bad = firstNonFinite(scales);
    if (bad >= 0) throw this.notFinite(name, bad, scales[bad], 'a scale cannot be');
    return scales;
  }

  private notFinite(name: string, at: number, value: number, what: string): WasmformerError {
    return new WasmformerError('BAD_TENSOR', `${this.file}: tensor ${JSON.stringify(name)}: element ${at} is ${value}, which ${what}`);
  }
}
