// A model whose greedy decoding runs to max_len: random weights of a larger shape with eos never
// chosen, and the demo model's tokenizer. For tests of what happens while a decode is long.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO } from './demo-model.js';
import { tinyTensors } from './io/tiny-model.js';
import { writeSafetensors } from './io/write-safetensors.js';

export const LONG_CONFIG = {
  d_model: 256, nhead: 4, num_encoder_layers: 3, num_decoder_layers: 3, dim_feedforward: 1024,
  activation: 'relu', norm_first: false, layer_norm_eps: 1e-5, final_norm: true, scale_embedding: true,
  src_vocab_size: 14, tgt_vocab_size: 24, max_len: 1024, pad_id: 0, bos_id: 1, eos_id: 2,
};

/** Writes the model into a new temporary folder (config.json, model.safetensors, tokenizer.json) and returns it. */
export function writeLongModel(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wasmformer-long-'));
  const tensors = tinyTensors(LONG_CONFIG, { generatorBias: true, seed: 11 });
  const bias = new Float32Array(LONG_CONFIG.tgt_vocab_size);
  bias[LONG_CONFIG.eos_id] = -1e4; // never chosen: every decoding runs to max_len
  tensors['generator.bias'] = { shape: [bias.length], data: bias };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(LONG_CONFIG));
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
  copyFileSync(`${DEMO}tokenizer.json`, join(dir, 'tokenizer.json'));
  return dir;
}
