// Hugging Face Marian folders against transformers' own MarianMTModel (tools/make_marian_fixtures.py):
// teacher-forced logits within 1e-4 * max(1, |ref|), greedy generate() ids exactly, the same
// parameter count, in every variant of the layout.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../dist/index.js';
import { parseSafetensors } from '../../dist/io/safetensors.js';
import { rejectionOf } from '../expect-error.js';
import { BUILD, expectClose } from '../helpers.js';
import { writeSafetensors } from '../io/write-safetensors.js';

interface MarianExpected {
  case: string;
  about: string;
  forward: { src: number[]; decoder_input_ids: number[]; logits: number[] }[];
  greedy: { src: number[]; max_new_tokens: number | null; ids: number[]; stopped_by_eos: boolean; min_margin: number }[];
  parameters: number;
}

const MARIAN = fileURLToPath(new URL('../fixtures/marian/', import.meta.url));
const CASES = readdirSync(MARIAN).map((name) => ({
  dir: MARIAN + name,
  expected: JSON.parse(readFileSync(`${MARIAN}${name}/expected.json`, 'utf8')) as MarianExpected,
}));

describe.each(CASES)('transformers parity: marian $expected.case', ({ dir, expected }) => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(dir, { build: BUILD });
  });

  it('teacher-forced logits match MarianMTModel', () => {
    for (const { src, decoder_input_ids: tgt, logits } of expected.forward) {
      const got = model.forward(src, tgt);
      expect(got.length).toBe(logits.length);
      expectClose(got, logits, 1e-4, 1e-4);
    }
  });

  it('greedy ids equal generate(num_beams=1), bad words and forced eos included', async () => {
    for (const { src, max_new_tokens, ids } of expected.greedy) {
      const options = max_new_tokens === null ? { numBeams: 1 } : { numBeams: 1, maxNewTokens: max_new_tokens };
      expect(await model.generate(src, options)).toEqual(ids);
    }
  });

  it('counts its parameters as transformers does', () => {
    expect(model.parameters).toBe(expected.parameters);
  });
});

describe('a Marian config as the architecture', () => {
  it('reads the family, the activation, the sinusoid and the generation defaults', async () => {
    const model = await loadModel(`${MARIAN}every_name_odd_widths`, { build: BUILD });
    expect(model.config).toMatchObject({
      family: 'marian', dModel: 20, numEncoderLayers: 1, numDecoderLayers: 3, encoderHeads: 4, decoderHeads: 5,
      encoderFfnDim: 36, decoderFfnDim: 28, activation: 'silu', normFirst: false, finalNorm: false,
      scaleEmbedding: true, sinusoid: 'halves', srcVocabSize: 61, tgtVocabSize: 61, maxLen: 24, padId: 60,
      decoderStartId: 60, eosId: 3,
      generation: expect.objectContaining({ maxLength: 16, numBeams: 4, badWordsIds: [[60], [7, 8], [11, 12, 13]], forcedEosTokenId: 3 }),
    });
    const separate = await loadModel(`${MARIAN}relu_separate_vocabs`, { build: BUILD });
    expect([separate.config.srcVocabSize, separate.config.tgtVocabSize, separate.config.activation]).toEqual([61, 47, 'relu']);
    const old = await loadModel(`${MARIAN}generation_in_config`, { build: BUILD });
    expect(old.config.generation).toMatchObject({ maxLength: 12, numBeams: 4, badWordsIds: [[60]], forcedEosTokenId: 0 });
  });
});

describe('Marian folders that are not right', () => {
  const dir = `${MARIAN}swish_scaled_stored`;
  const config = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')) as Record<string, unknown>;
  const weights = new Uint8Array(readFileSync(`${dir}/model.safetensors`));

  it('refuses a model_type it does not run, naming it', async () => {
    for (const type of ['bart', 'mbart', 'm2m_100', 7]) {
      const message = await rejectionOf(loadModel({ config: { ...config, model_type: type }, weights }, { build: BUILD }), 'UNSUPPORTED');
      expect(message).toBe(`config: model_type ${JSON.stringify(type)} is not supported (wasmformer loads "marian", and the PyTorch tutorial's layout, which has no model_type)`);
    }
  });

  it('names the config field and the tensor by their Hugging Face names', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ...config, activation_function: 'gelu_new' }, 'BAD_CONFIG', /^config: field "activation_function" must be "swish" or "silu" or "gelu" or "relu", got "gelu_new"$/],
      [{ ...config, d_model: 25 }, 'BAD_CONFIG', /^config: d_model \(25\) is not divisible by encoder_attention_heads \(4\)$/],
      [{ ...config, pad_token_id: 61 }, 'BAD_CONFIG', /^config: field "pad_token_id" \(61\) must be below decoder_vocab_size \(61\)$/],
      [{ ...config, encoder_ffn_dim: 41 }, 'BAD_TENSOR', /^weights: tensor "model\.encoder\.layers\.0\.fc1\.weight" has shape \[40, 24\], expected \[41, 24\]$/],
      [{ ...config, decoder_layers: 1 }, 'BAD_TENSOR', /^weights: tensor "model\.decoder\.layers\.1\.\S+" is in decoder layer 1, but the config has decoder_layers 1$/],
      [{ ...config, vocab_size: 62 }, 'BAD_TENSOR', /^weights: tensor "model\.shared\.weight" has shape \[61, 24\], expected \[62, 24\]$/],
    ];
    for (const [json, code, message] of cases) {
      expect(await rejectionOf(loadModel({ config: json, weights }, { build: BUILD }), code)).toMatch(message);
    }
  });

  it('says which names may hold the embedding matrix when none does', async () => {
    const tensors = Object.fromEntries([...parseSafetensors(weights, 'w')].filter(([name]) => name !== 'model.shared.weight')
      .map(([name, e]) => [name, { shape: [...e.shape], data: weights.subarray(e.begin, e.end) }]));
    const message = await rejectionOf(loadModel({ config, weights: writeSafetensors(tensors) }, { build: BUILD }), 'BAD_TENSOR');
    expect(message).toMatch(/^weights: missing tensor "model\.shared\.weight" \[61, 24\] \(or "model\.encoder\.embed_tokens\.weight", "model\.decoder\.embed_tokens\.weight"\)/);
  });

  it('refuses norms of another family (BART and mBART have them, Marian does not)', async () => {
    const tensors = Object.fromEntries([...parseSafetensors(weights, 'w')].map(([name, e]) => [name, { shape: [...e.shape], data: weights.subarray(e.begin, e.end) }]));
    const message = await rejectionOf(loadModel({ config, weights: writeSafetensors({ ...tensors, 'model.encoder.layer_norm.weight': { shape: [24] } }) }, { build: BUILD }), 'BAD_TENSOR');
    expect(message).toBe('weights: tensor "model.encoder.layer_norm.weight" belongs to a model with stack-final or embedding norms (BART, mBART), which Marian does not have');
  });
});
