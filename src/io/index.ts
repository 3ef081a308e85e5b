import { WasmformerError } from '../errors.js';
import { parseConfig, type ModelConfig } from './config.js';
import { parseSafetensors, readF32, type TensorEntry } from './safetensors.js';
import { readModelFiles, type ModelSource, type ReadOptions } from './source.js';
import { checkWeights, type OptionalTensors } from './weights.js';

export { parseConfig, type ModelConfig } from './config.js';
export { parseSafetensors, readF32, type Dtype, type TensorEntry } from './safetensors.js';
export {
  CONFIG_FILE, WEIGHTS_FILE, readModelFiles, type ModelBytes, type ModelFiles, type ModelSource, type ReadOptions,
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

/** Reads a model from a folder, a URL or bytes, and checks config and tensors against each other. */
export async function readModel(source: ModelSource, options: ReadOptions = {}): Promise<CheckedModel> {
  const files = await readModelFiles(source, options);
  const config = parseConfig(files.config, files.configFile);
  const tensors = parseSafetensors(files.weights, files.weightsFile);
  const optional = checkWeights(config, tensors, files.weightsFile);
  const read = (name: string): Float32Array => {
    const entry = tensors.get(name);
    if (entry === undefined) throw new WasmformerError('BAD_TENSOR', `${files.weightsFile}: missing tensor ${JSON.stringify(name)}`);
    return readF32(files.weights, entry, files.weightsFile);
  };
  return { config, optional, tensors, read };
}
