import { WasmformerError } from '../errors.js';
import { familyOf, parseConfig, size, type ModelConfig, type Slot } from '../families/index.js';
import { jsonObject } from './config.js';
import { parseSafetensors, readF32, safetensorsHeaderBytes, type TensorEntry } from './safetensors.js';
import { readGenerationConfig, readModelConfig, readModelWeights, type ModelSource, type ReadOptions } from './source.js';
import { isTorchFile, parseTorchZip, torchHeadBytes } from './torch.js';
import { checkWeights, type Resolved } from './weights.js';

/** Bytes that tell torch.save's files (a zip, or the legacy pickle's magic) from safetensors. */
const TORCH_SIGNATURE = 14;

export { parseConfig, type ModelConfig } from '../families/index.js';
export { parseSafetensors, readF32, safetensorsHeaderBytes, type Dtype, type TensorEntry } from './safetensors.js';
export {
  CONFIG_FILE, GENERATION_FILE, WEIGHTS_FILE, WEIGHTS_FILES, isModelBytes, readFile, readGenerationConfig, readModelConfig, readModelFile,
  readModelWeights, readOptionalFile,
  type FileContents, type HeadCheck, type ModelBytes, type ModelFileUrls, type ModelSource, type ReadFileOptions, type ReadOptions,
} from './source.js';
export { isTorchFile, isTorchZip, parseTorchZip } from './torch.js';
export { checkWeights, expectedTensors, parameterCount, type ExpectedTensor, type Resolved, type ResolvedSlot } from './weights.js';

/** A model whose files were read and checked completely: what remains cannot fail. */
export interface CheckedModel {
  readonly config: ModelConfig;
  /** Every slot of the model and the tensor that holds it. */
  readonly resolved: Resolved;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  /**
   * A slot's values as a fresh Float32Array (widened from F16 or BF16; its rows of a larger
   * tensor; a position table's first max_len rows), or null when it is absent and its
   * `absent` rule says zero or computed.
   */
  read(slot: Slot): Float32Array | null;
}

/**
 * Reads a model from a folder, a URL, its files' URLs or bytes, and checks config and tensors
 * against each other: config.json (and generation_config.json) first, then the weights' header
 * as soon as it arrives (a wrong file or a wrong shape fails before the data downloads), then
 * the whole file.
 */
export async function readModel(source: ModelSource, options: ReadOptions = {}): Promise<CheckedModel> {
  const { data: json, file: configFile } = await readModelConfig(source);
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
  const resolved = checkWeights(config, tensors, file);
  const read = (slot: Slot): Float32Array | null => {
    const r = resolved.get(slot);
    if (r === undefined) throw new WasmformerError('BAD_TENSOR', `${file}: the model has no ${slot}`);
    if (r.entry === null) return typeof r.source.absent === 'string' && r.source.absent !== 'zero' && r.source.absent !== 'computed' ? read(r.source.absent) : null;
    const all = readF32(weights, r.entry, file);
    const n = size(r.source.shape);
    const at = r.source.positions ? 0 : (r.source.row ?? 0) * (n / r.source.shape[0]);
    return at === 0 && n === all.length ? all : all.subarray(at, at + n);
  };
  return { config, resolved, tensors, read };
}
