import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../dist/io/index.js';
import { errorOf } from '../expect-error.js';
import { tinyConfig } from './tiny-model.js';

const FIELDS = Object.keys(tinyConfig());

describe('parseConfig', () => {
  it('reads every field into camelCase, from an object or from text', () => {
    const json = tinyConfig({ extra_field: 'ignored', activation: 'relu' });
    const want = {
      family: 'tutorial', dModel: 6, numEncoderLayers: 2, numDecoderLayers: 1, encoderHeads: 2, decoderHeads: 2,
      encoderFfnDim: 5, decoderFfnDim: 5, activation: 'relu', normFirst: true, layerNormEps: 1e-5, finalNorm: true,
      scaleEmbedding: false, sinusoid: 'interleaved', srcVocabSize: 7, tgtVocabSize: 9, maxLen: 4, padId: 0,
      decoderStartId: 1, eosId: 2, generation: {
        maxLength: null, minLength: 0, numBeams: 1, lengthPenalty: 1, earlyStopping: false, numReturnSequences: 1, badWordsIds: [],
        forcedEosTokenId: null, noRepeatNgramSize: 0, repetitionPenalty: 1, doSample: false, temperature: 1, topK: 50, topP: 1,
      },
    };
    expect(parseConfig(json, 'config.json')).toEqual(want);
    expect(parseConfig(JSON.stringify(json), 'config.json')).toEqual(want);
  });

  it.each(FIELDS)('names the missing field %s', (field) => {
    const json = tinyConfig();
    delete json[field];
    expect(errorOf(() => parseConfig(json, 'm/config.json'), 'BAD_CONFIG')).toBe(`m/config.json: missing field "${field}"`);
  });

  const ints = ['d_model', 'nhead', 'num_encoder_layers', 'num_decoder_layers', 'dim_feedforward',
    'src_vocab_size', 'tgt_vocab_size', 'max_len'];
  const ids = ['pad_id', 'bos_id', 'eos_id'];
  const bools = ['norm_first', 'final_norm', 'scale_embedding'];
  const bad: [string, unknown][] = [
    ...ints.flatMap((f) => [[f, 0], [f, -3], [f, 2.5], [f, '6'], [f, null], [f, true], [f, 2 ** 53]] as [string, unknown][]),
    ...ids.flatMap((f) => [[f, -1], [f, 1.5], [f, '1'], [f, null]] as [string, unknown][]),
    ...bools.flatMap((f) => [[f, 1], [f, 'true'], [f, null]] as [string, unknown][]),
    ['activation', 'swish'], ['activation', 'RELU'], ['activation', 1], ['activation', null],
    ['layer_norm_eps', 0], ['layer_norm_eps', -1e-5], ['layer_norm_eps', '1e-5'], ['layer_norm_eps', Infinity],
    ['layer_norm_eps', NaN], ['layer_norm_eps', null],
  ];
  it.each(bad)('rejects %s = %j, naming the field and the value', (field, value) => {
    const message = errorOf(() => parseConfig(tinyConfig({ [field]: value }), 'config.json'), 'BAD_CONFIG');
    expect(message).toMatch(new RegExp(`^config\\.json: field "${field}" must be .*, got `));
  });

  it('names both fields when nhead does not divide d_model', () => {
    const message = errorOf(() => parseConfig(tinyConfig({ d_model: 6, nhead: 4 }), 'config.json'), 'BAD_CONFIG');
    expect(message).toBe('config.json: d_model (6) is not divisible by nhead (4)');
  });

  it('keeps special ids inside the vocabularies, and max_len at 2 or more', () => {
    for (const field of ['pad_id', 'bos_id', 'eos_id']) {
      expect(errorOf(() => parseConfig(tinyConfig({ [field]: 9 }), 'c'), 'BAD_CONFIG'))
        .toBe(`c: field "${field}" (9) must be below tgt_vocab_size (9)`);
      expect(parseConfig(tinyConfig({ [field]: 6 }), 'c')).toBeDefined();
    }
    // pad_id is compared with source ids too; bos and eos need only be target ids.
    expect(errorOf(() => parseConfig(tinyConfig({ pad_id: 7 }), 'c'), 'BAD_CONFIG'))
      .toBe('c: field "pad_id" (7) must be below src_vocab_size (7)');
    expect(parseConfig(tinyConfig({ eos_id: 8 }), 'c').eosId).toBe(8);
    expect(errorOf(() => parseConfig(tinyConfig({ max_len: 1 }), 'c'), 'BAD_CONFIG')).toMatch(/"max_len" must be at least 2/);
  });

  it('rejects text that is not JSON and JSON that is not an object, naming the file', () => {
    expect(errorOf(() => parseConfig('{"d_model": 6,', 'x/config.json'), 'BAD_CONFIG')).toMatch(/^x\/config\.json: not valid JSON/);
    for (const json of ['[]', '"text"', '12', 'null']) {
      expect(errorOf(() => parseConfig(json, 'config.json'), 'BAD_CONFIG')).toMatch(/^config\.json: must be a JSON object, got /);
    }
    expect(errorOf(() => parseConfig(undefined, 'config'), 'BAD_CONFIG')).toBe('config: must be a JSON object, got undefined');
  });

  it('does not take inherited properties for fields', () => {
    const json = Object.create(tinyConfig()) as object;
    expect(errorOf(() => parseConfig(json, 'c'), 'BAD_CONFIG')).toBe('c: missing field "d_model"');
  });
});
