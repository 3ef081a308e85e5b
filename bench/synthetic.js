// Seeded random models of a given shape, built in memory in the model format (nothing written
// to disk): for benchmarks, where values only need to be of the right scale.
import { expectedTensors, parseConfig } from '../dist/io/index.js';

/** The paper's base shape and a small one, both with an 8000-token vocabulary. */
export const SHAPES = {
  base: { d_model: 512, nhead: 8, num_encoder_layers: 6, num_decoder_layers: 6, dim_feedforward: 2048 },
  small: { d_model: 256, nhead: 4, num_encoder_layers: 3, num_decoder_layers: 3, dim_feedforward: 1024 },
};

/** config.json of a shape: post-LN, ReLU, final norms, vocabularies of 8000, max_len 128. */
export function syntheticConfig(shape) {
  return {
    ...SHAPES[shape], activation: 'relu', norm_first: false, layer_norm_eps: 1e-5, final_norm: true,
    scale_embedding: true, src_vocab_size: 8000, tgt_vocab_size: 8000, max_len: 128, pad_id: 0, bos_id: 1, eos_id: 2,
  };
}

/** { config, weights } for loadModel: uniform(+-1/sqrt(fan_in)) weights, unit norms, as PyTorch inits. */
export function syntheticModel(shape, seed = 1) {
  const config = syntheticConfig(shape);
  const rand = mulberry32(seed);
  const tensors = expectedTensors(parseConfig(config, 'config.json')).map(({ name, shape: dims }) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    if (/norm\d?\.weight$/.test(name)) data.fill(1);
    else if (!/norm\d?\.bias$/.test(name)) {
      const bound = name.includes('embedding') ? 1 / Math.sqrt(config.d_model) : 1 / Math.sqrt(dims[dims.length - 1]);
      for (let i = 0; i < data.length; i++) data[i] = (2 * rand() - 1) * bound;
    }
    return { name, shape: dims, data };
  });
  return { config, weights: safetensors(tensors) };
}

/** A safetensors file: u64 header length, JSON header padded to 8 bytes, tensors back to back. */
function safetensors(tensors) {
  const header = {};
  let offset = 0;
  for (const { name, shape, data } of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + json.length;
  for (const { data } of tensors) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

function mulberry32(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
