// A tiny model in the format of shared/spec/model-format.md, written from the spec's table
// (not from src/io/weights.ts, which it tests).
import { rng } from '../helpers.js';
import type { TensorSpec } from './write-safetensors.js';

export type ConfigJson = Record<string, unknown>;

/** A valid config.json object with odd sizes; overrides replace fields. */
export function tinyConfig(overrides: ConfigJson = {}): ConfigJson {
  return {
    d_model: 6,
    nhead: 2,
    num_encoder_layers: 2,
    num_decoder_layers: 1,
    dim_feedforward: 5,
    activation: 'gelu',
    norm_first: true,
    layer_norm_eps: 1e-5,
    final_norm: true,
    scale_embedding: false,
    src_vocab_size: 7,
    tgt_vocab_size: 9,
    max_len: 4,
    pad_id: 0,
    bos_id: 1,
    eos_id: 2,
    ...overrides,
  };
}

export interface TinyOptions {
  /** Shape of positional_encoding.pos_embedding, or absent. */
  posEmbedding?: number[];
  generatorWeight?: boolean;
  generatorBias?: boolean;
  seed?: number;
}

/** Every tensor the spec names for this config, with random F32 values. */
export function tinyTensors(c: ConfigJson, options: TinyOptions = {}): Record<string, TensorSpec> {
  const d = c.d_model as number;
  const ff = c.dim_feedforward as number;
  const rand = rng(options.seed ?? 1);
  const t: Record<string, TensorSpec> = {};
  const add = (name: string, shape: number[]): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    t[name] = { shape, data: Array.from({ length: n }, () => rand()) };
  };
  const layer = (prefix: string, attentions: string[], norms: number): void => {
    for (const a of attentions) {
      add(`${prefix}.${a}.in_proj_weight`, [3 * d, d]);
      add(`${prefix}.${a}.in_proj_bias`, [3 * d]);
      add(`${prefix}.${a}.out_proj.weight`, [d, d]);
      add(`${prefix}.${a}.out_proj.bias`, [d]);
    }
    add(`${prefix}.linear1.weight`, [ff, d]);
    add(`${prefix}.linear1.bias`, [ff]);
    add(`${prefix}.linear2.weight`, [d, ff]);
    add(`${prefix}.linear2.bias`, [d]);
    for (let k = 1; k <= norms; k++) {
      add(`${prefix}.norm${k}.weight`, [d]);
      add(`${prefix}.norm${k}.bias`, [d]);
    }
  };
  add('src_tok_emb.embedding.weight', [c.src_vocab_size as number, d]);
  add('tgt_tok_emb.embedding.weight', [c.tgt_vocab_size as number, d]);
  if (options.posEmbedding !== undefined) add('positional_encoding.pos_embedding', options.posEmbedding);
  for (let i = 0; i < (c.num_encoder_layers as number); i++) layer(`transformer.encoder.layers.${i}`, ['self_attn'], 2);
  for (let i = 0; i < (c.num_decoder_layers as number); i++) {
    layer(`transformer.decoder.layers.${i}`, ['self_attn', 'multihead_attn'], 3);
  }
  if (c.final_norm === true) {
    for (const stack of ['encoder', 'decoder']) {
      add(`transformer.${stack}.norm.weight`, [d]);
      add(`transformer.${stack}.norm.bias`, [d]);
    }
  }
  if (options.generatorWeight === true) add('generator.weight', [c.tgt_vocab_size as number, d]);
  if (options.generatorBias === true) add('generator.bias', [c.tgt_vocab_size as number]);
  return t;
}
