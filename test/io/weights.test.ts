import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkWeights, expectedTensors, parameterCount, parseConfig, type Resolved } from '../../dist/io/index.js';
import { parseSafetensors, readF32 } from '../../dist/io/safetensors.js';
import { errorOf } from '../expect-error.js';
import { tinyConfig, tinyTensors, type ConfigJson, type TinyOptions } from './tiny-model.js';
import { writeSafetensors, type TensorSpec } from './write-safetensors.js';

const FILE = 'model.safetensors';

/** Parses config and tensors (edited by the caller) and checks them against each other. */
function check(json: ConfigJson, tensors: Record<string, TensorSpec>): Resolved {
  const config = parseConfig(json, 'config.json');
  return checkWeights(config, parseSafetensors(writeSafetensors(tensors), FILE), FILE);
}

/** Which of the tutorial's optional tensors a checked file holds. */
function optional(resolved: Resolved): { posEmbedding: boolean; generatorWeight: boolean; generatorBias: boolean } {
  const has = (slot: 'src.positions' | 'generator.weight' | 'generator.bias') => resolved.get(slot)!.entry !== null;
  return { posEmbedding: has('src.positions'), generatorWeight: has('generator.weight'), generatorBias: has('generator.bias') };
}

const badTensor = (json: ConfigJson, tensors: Record<string, TensorSpec>): string =>
  errorOf(() => check(json, tensors), 'BAD_TENSOR');

const VARIANTS: [string, ConfigJson, TinyOptions][] = [
  ['everything', tinyConfig(), { posEmbedding: [5, 1, 6], generatorWeight: true, generatorBias: true }],
  ['tied generator, no positions', tinyConfig(), {}],
  ['bias without weight, [P, d] positions', tinyConfig(), { generatorBias: true, posEmbedding: [4, 6] }],
  ['no final norm, one encoder layer, three decoder layers',
    tinyConfig({ final_norm: false, num_encoder_layers: 1, num_decoder_layers: 3 }), { generatorWeight: true }],
];

describe('expectedTensors', () => {
  it.each(VARIANTS)('names exactly the tensors of the spec (%s)', (_, json, options) => {
    const config = parseConfig(json, 'config.json');
    const spec = tinyTensors(json, { ...options, posEmbedding: undefined, generatorWeight: true, generatorBias: true });
    const expected = expectedTensors(config);
    expect(expected.map((t) => t.name).sort()).toEqual(Object.keys(spec).sort());
    for (const t of expected) {
      expect(t.shape).toEqual(spec[t.name].shape);
      expect(t.optional).toBe(t.name === 'generator.weight' || t.name === 'generator.bias');
    }
  });

});

describe('checkWeights', () => {
  it.each(VARIANTS)('accepts a complete model (%s) and reports its optional tensors', (_, json, options) => {
    expect(optional(check(json, tinyTensors(json, options)))).toEqual({
      posEmbedding: options.posEmbedding !== undefined,
      generatorWeight: options.generatorWeight === true,
      generatorBias: options.generatorBias === true,
    });
  });

  it('loads the PyTorch tutorial state dict unchanged, each tensor from its own bytes', () => {
    const dir = new URL('./fixtures/tutorial/', import.meta.url);
    const bytes = new Uint8Array(readFileSync(new URL('model.safetensors', dir)));
    const config = parseConfig(readFileSync(new URL('config.json', dir), 'utf8'), 'config.json');
    const expected = JSON.parse(readFileSync(new URL('expected.json', dir), 'utf8')) as {
      parameters: number; sums: Record<string, number>;
    };
    const entries = parseSafetensors(bytes, FILE);
    const resolved = checkWeights(config, entries, FILE);
    expect(optional(resolved)).toEqual({ posEmbedding: true, generatorWeight: true, generatorBias: true });
    expect(parameterCount(resolved)).toBe(expected.parameters);
    expect([...entries.keys()].sort()).toEqual(Object.keys(expected.sums).sort());
    for (const [name, sum] of Object.entries(expected.sums)) {
      const values = readF32(bytes, entries.get(name)!);
      expect(values.reduce((a, b) => a + b, 0)).toBeCloseTo(sum, 9);
    }
  });

  it('names a missing tensor, and how many the config needs when the file has fewer', () => {
    const json = tinyConfig();
    const all = tinyTensors(json); // 48 tensors
    for (const name of Object.keys(all)) {
      const { [name]: _, ...rest } = all;
      expect(badTensor(json, rest)).toBe(
        `${FILE}: missing tensor "${name}" [${all[name].shape.join(', ')}] (the config needs 48 tensors, the file has 47)`);
      const padded = { ...rest, a: { shape: [1] }, b: { shape: [1] } };
      expect(badTensor(json, padded)).toBe(`${FILE}: missing tensor "${name}" [${all[name].shape.join(', ')}]`);
    }
    const noEncoder = Object.fromEntries(Object.entries(all).filter(([n]) => !n.startsWith('transformer.encoder.layers.1.')));
    expect(badTensor(json, noEncoder)).toBe(`${FILE}: missing tensor "transformer.encoder.layers.1.self_attn.in_proj_weight" ` +
      '[18, 6] (the config needs 48 tensors, the file has 36)');
  });

  it.each(VARIANTS)('counts the tensors a config needs (%s)', (_, json) => {
    const needs = expectedTensors(parseConfig(json, 'config.json')).filter((t) => !t.optional).length;
    const { 'src_tok_emb.embedding.weight': _emb, ...rest } = tinyTensors(json);
    expect(badTensor(json, rest)).toMatch(new RegExp(`the config needs ${needs} tensors, the file has ${needs - 1}\\)$`));
  });

  it('stops at once on a config that claims more layers than any file holds', () => {
    const json = tinyConfig({ num_encoder_layers: 2 ** 40, num_decoder_layers: 2 ** 50 });
    expect(badTensor(json, tinyTensors(tinyConfig()))).toMatch(/missing tensor "transformer\.encoder\.layers\.2\.self_attn\.in_proj_weight"/);
  });

  it('names a misshapen tensor with both shapes', () => {
    const json = tinyConfig();
    const all = tinyTensors(json, { generatorWeight: true, generatorBias: true });
    for (const [name, t] of Object.entries(all)) {
      const shapes = [[t.shape[0] + 1, ...t.shape.slice(1)], [...t.shape, 1], t.shape.slice(1)];
      for (const shape of shapes) {
        const message = badTensor(json, { ...all, [name]: { shape } });
        expect(message).toBe(`${FILE}: tensor "${name}" has shape [${shape.join(', ')}], expected [${t.shape.join(', ')}]`);
      }
    }
    expect(badTensor(json, { ...all, 'transformer.encoder.layers.0.linear1.weight': { shape: [6, 5] } }))
      .toBe(`${FILE}: tensor "transformer.encoder.layers.0.linear1.weight" has shape [6, 5], expected [5, 6]`);
  });

  it('takes F32, F16 and BF16 for any tensor it reads, and refuses other dtypes', () => {
    const json = tinyConfig();
    const all = tinyTensors(json, { generatorBias: true, posEmbedding: [4, 6] });
    const name = 'transformer.encoder.layers.1.norm2.bias';
    for (const dtype of ['F16', 'BF16']) expect(check(json, { ...all, [name]: { shape: [6], dtype } })).toBeDefined();
    for (const dtype of ['F64', 'I32', 'U8', 'BOOL']) {
      expect(badTensor(json, { ...all, [name]: { shape: [6], dtype } }))
        .toBe(`${FILE}: tensor "${name}" has dtype ${dtype}, expected F32, F16 or BF16`);
      for (const optional of ['generator.bias', 'positional_encoding.pos_embedding']) {
        expect(badTensor(json, { ...all, [optional]: { ...all[optional], dtype, data: undefined } }))
          .toMatch(new RegExp(`tensor "${optional}" has dtype ${dtype}`));
      }
    }
  });

  it('takes positions as [P, d_model] or [P, 1, d_model] with P >= max_len', () => {
    const json = tinyConfig(); // max_len 4, d_model 6
    for (const shape of [[4, 6], [4, 1, 6], [5000, 6], [7, 1, 6]]) {
      expect(optional(check(json, tinyTensors(json, { posEmbedding: shape }))).posEmbedding).toBe(true);
    }
    for (const shape of [[3, 6], [3, 1, 6], [4, 2, 6], [4, 7], [4, 1, 5], [24], [4, 6, 1], [1, 4, 6], [4, 1, 1, 6]]) {
      expect(badTensor(json, tinyTensors(json, { posEmbedding: shape }))).toBe(`${FILE}: tensor ` +
        `"positional_encoding.pos_embedding" has shape [${shape.join(', ')}], expected [P, 6] or [P, 1, 6] with P >= max_len (4)`);
    }
  });

  it('refuses final norms when final_norm is false, and layers past the configured depth', () => {
    const json = tinyConfig({ final_norm: false });
    const withNorms = tinyTensors(tinyConfig());
    expect(badTensor(json, withNorms)).toMatch(
      /tensor "transformer\.encoder\.norm\.weight" is present, but the config has final_norm false/);
    const twoDecoderLayers = tinyTensors(tinyConfig({ num_decoder_layers: 2 }));
    expect(badTensor(tinyConfig(), twoDecoderLayers)).toBe(`${FILE}: tensor ` +
      '"transformer.decoder.layers.1.self_attn.in_proj_weight" is in decoder layer 1, but the config has num_decoder_layers 1');
  });

  it('ignores tensors the format does not name, whatever their dtype', () => {
    const json = tinyConfig();
    const extra = {
      ...tinyTensors(json),
      'num_batches_tracked': { shape: [], dtype: 'I64' },
      'transformer.encoder.layers.0.extra': { shape: [3], dtype: 'U8' },
      'positional_encoding.other': { shape: [2], dtype: 'F64' },
    };
    expect(optional(check(json, extra))).toEqual({ posEmbedding: false, generatorWeight: false, generatorBias: false });
  });
});

describe('parameterCount', () => {
  it('counts a tied generator weight once, and the bias when present', () => {
    const json = tinyConfig();
    // d 6, ff 5, vocabularies 7 and 9: embeddings 96; attention 108 + 18 + 36 + 6 = 168; feed-forward
    // 30 + 5 + 30 + 6 = 71; a norm 12; two encoder layers, one decoder layer, final norms; generator 54 + 9.
    const tied = 96 + 2 * (168 + 71 + 24) + (2 * 168 + 71 + 36) + 24;
    expect(parameterCount(check(json, tinyTensors(json)))).toBe(tied);
    expect(parameterCount(check(json, tinyTensors(json, { generatorBias: true })))).toBe(tied + 9);
    expect(parameterCount(check(json, tinyTensors(json, { generatorWeight: true, generatorBias: true })))).toBe(tied + 54 + 9);
    // The position table is a buffer, not a parameter.
    expect(parameterCount(check(json, tinyTensors(json, { posEmbedding: [4, 6] })))).toBe(tied);
  });
});
