// A quantized folder's model.safetensors (`wasmformer quantize`): the matrices as int8 with one
// scale per row, so a page downloads about a quarter of a float32 file's bytes.
import { isMatrix, size, type Family } from '../families/index.js';
import type { CheckedModel } from './index.js';
import { encodeSafetensors, f32Bytes, type TensorData } from './safetensors.js';
import { CONFIG_FILE, GENERATION_FILE } from './source.js';
import { scaleName } from './weights.js';

/** The `__metadata__` of a quantized file: "wasmformer.dtype" says what wrote it. */
export const Q8_METADATA: Readonly<Record<string, string>> = { format: 'pt', 'wasmformer.dtype': 'q8' };

/** A quantized model.safetensors, and the sizes it reports. */
export interface QuantizedFile {
  readonly bytes: Uint8Array;
  /** How many matrices it stores as I8. */
  readonly matrices: number;
  /** Bytes the same tensors take as float32. */
  readonly float32Bytes: number;
}

/**
 * model.safetensors of a q8 folder: every matrix the loader quantizes as I8 under its checkpoint
 * name, its shape unchanged, followed by `<name>_scale` F32 [rows]; every other tensor the family
 * reads as F32. Each stored tensor once, in checkpoint order (a tied matrix under the name the
 * folder stored it by); tensors the family does not read, and positions it computes, are not
 * written. Quantized as loadModel(dir, { dtype: 'q8' }) quantizes (I8 matrices are kept as they
 * are), so both load to the same model.
 */
export function quantizedSafetensors(checked: CheckedModel): QuantizedFile {
  const tensors: TensorData[] = [];
  const written = new Set<string>();
  let matrices = 0;
  let float32Bytes = 0;
  for (const { source, entry } of checked.resolved.values()) {
    if (entry === null || written.has(entry.name)) continue;
    written.add(entry.name);
    float32Bytes += 4 * size(entry.shape);
    if (!isMatrix(source)) {
      tensors.push({ name: entry.name, dtype: 'F32', shape: entry.shape, data: f32Bytes(checked.readTensor(entry)) });
      continue;
    }
    const { values, scales } = checked.quantizeTensor(entry);
    tensors.push({ name: entry.name, dtype: 'I8', shape: entry.shape, data: new Uint8Array(values.buffer, values.byteOffset, values.length) });
    tensors.push({ name: scaleName(entry.name), dtype: 'F32', shape: [scales.length], data: f32Bytes(scales) });
    matrices++;
  }
  return { bytes: encodeSafetensors(tensors, Q8_METADATA), matrices, float32Bytes };
}

/** The files of a model folder that its quantized copy carries unchanged: config.json, generation_config.json, the tokenizer's. */
export function companionFiles(family: Family): string[] {
  const { required, optional } = family.tokenizerFiles;
  return [CONFIG_FILE, ...(family.generationConfig ? [GENERATION_FILE] : []), ...required, ...optional];
}
