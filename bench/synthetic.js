// Seeded random models of a given shape, built in memory in any family's layout (nothing written
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

/**
 * The same shapes as Hugging Face Marian configs (opus-mt's: swish, scaled embeddings, one shared
 * matrix), with a vocabulary of `vocab` (opus-mt-en-de's is 58101).
 */
export function marianConfig(shape, vocab = 58101) {
  const s = SHAPES[shape];
  return {
    model_type: 'marian', d_model: s.d_model, encoder_layers: s.num_encoder_layers, decoder_layers: s.num_decoder_layers,
    encoder_attention_heads: s.nhead, decoder_attention_heads: s.nhead, encoder_ffn_dim: s.dim_feedforward,
    decoder_ffn_dim: s.dim_feedforward, activation_function: 'swish', scale_embedding: true, vocab_size: vocab,
    max_position_embeddings: 512, pad_token_id: vocab - 1, decoder_start_token_id: vocab - 1, eos_token_id: 0,
    forced_eos_token_id: 0, bad_words_ids: [[vocab - 1]], max_length: 512, num_beams: 4,
  };
}

/** { config, weights } for loadModel: a shape of the tutorial layout (vocabularies of 8000), or any config. */
export function syntheticModel(shape, seed = 1) {
  return syntheticFolder(syntheticConfig(shape), seed);
}

/**
 * { config, weights } for loadModel from any family's config.json: every tensor its family
 * stores (the optional ones too, unless told not to), uniform(+-1/sqrt(fan_in)) weights, unit
 * norms, as PyTorch inits; dtype F32 or F16.
 */
export function syntheticFolder(config, seed = 1, dtype = 'F32', { optional = true, adjust = null } = {}) {
  const rand = mulberry32(seed);
  const d = config.d_model;
  const expected = expectedTensors(parseConfig(config, 'config.json')).filter((t) => optional || !t.optional);
  const tensors = expected.map(({ name, shape: dims }) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    if (/norm\d?\.weight$/.test(name)) data.fill(1);
    else if (!/norm\d?\.bias$/.test(name)) {
      const bound = /embed|shared/.test(name) ? 1 / Math.sqrt(d) : 1 / Math.sqrt(dims[dims.length - 1]);
      for (let i = 0; i < data.length; i++) data[i] = (2 * rand() - 1) * bound;
    }
    adjust?.(name, dims, data, rand);
    return { name, shape: dims, data };
  });
  return { config, weights: safetensors(tensors, dtype) };
}

/** A safetensors file: u64 header length, JSON header padded to 8 bytes, tensors back to back. */
function safetensors(tensors, dtype) {
  const header = {};
  let offset = 0;
  const stored = tensors.map(({ name, shape, data }) => ({ name, shape, data: dtype === 'F16' ? toF16(data) : data }));
  for (const { name, shape, data } of stored) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  tensors = stored;
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

/** float16 bits of each value, rounded to nearest (even); enough for weights of this scale. */
function toF16(data) {
  const out = new Uint16Array(data.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < data.length; i++) {
    f[0] = data[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    if (exp <= 0) out[i] = sign; // tiny: zero
    else {
      let h = sign | (exp << 10) | ((x >>> 13) & 0x3ff);
      const rest = x & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
      out[i] = h;
    }
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
