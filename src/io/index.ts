import { WasmformerError } from '../errors.js';
import { parseConfig, type ModelConfig } from './config.js';
import { parseSafetensors, readF32, safetensorsHeaderBytes, type TensorEntry } from './safetensors.js';
import { readModelConfig, readModelWeights, type ModelSource, type ReadOptions } from './source.js';
import { checkWeights, type OptionalTensors } from './weights.js';

export { parseConfig, type ModelConfig } from './config.js';
export { parseSafetensors, readF32, safetensorsHeaderBytes, type Dtype, type TensorEntry } from './safetensors.js';
export {
  CONFIG_FILE, WEIGHTS_FILE, isModelBytes, readFile, readModelConfig, readModelFile, readModelWeights,
  type FileContents, type HeadCheck, type ModelBytes, type ModelFileUrls, type ModelSource, type ReadFileOptions, type ReadOptions,
} from './source.js';
export {
  TENSOR, checkWeights, decoderLayerName, encoderLayerName, expectedTensors, parameterCount,
  type DecoderLayerTensor, type EncoderLayerTensor, type ExpectedTensor, type OptionalTensors,
} from './weights.js';

/** A model whose files were read and checked completely: what remains cannot fail. */
export interface CheckedModel {
  readonly config: ModelConfig;
  /** Which of positional_encoding.pos_embedding, generator.weight, generator.bias the file holds. */
  readonly optional: OptionalTensors;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  /** A tensor's values as a fresh Float32Array (widened from F16 or BF16). */
  read(name: string): Float32Array;
}

/**
 * Reads a model from a folder, a URL, its files' URLs or bytes, and checks config and tensors
 * against each other: config.json first, then the weights' header as soon as it arrives (a
 * wrong file or a wrong shape fails before the data downloads), then the whole file.
 */
export async function readModel(source: ModelSource, options: ReadOptions = {}): Promise<CheckedModel> {
  const { data: json, file: configFile } = await readModelConfig(source);
  const config = parseConfig(json, configFile);
  const head = (bytes: Uint8Array, size: number | null, file: string): number => {
    const needed = safetensorsHeaderBytes(bytes, size, file);
    if (needed > bytes.length) return needed;
    checkWeights(config, parseSafetensors(bytes, file, size), file);
    return 0;
  };
  const { data: weights, file } = await readModelWeights(source, { onProgress: options.onProgress, head });
  const tensors = parseSafetensors(weights, file);
  const optional = checkWeights(config, tensors, file);
  const read = (name: string): Float32Array => {
    const entry = tensors.get(name);
    if (entry === undefined) throw new WasmformerError('BAD_TENSOR', `${file}: missing tensor ${JSON.stringify(name)}`);
    return readF32(weights, entry, file);
  };
  return { config, optional, tensors, read };
}
