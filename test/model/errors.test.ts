import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, WasmformerError, type Model } from '../../dist/index.js';
import { errorOf, rejectionOf } from '../expect-error.js';
import { BUILD, rng } from '../helpers.js';
import { FIXTURES } from './fixtures.js';

const DIR = `${FIXTURES}source_padding`;
const CONFIG = JSON.parse(readFileSync(`${DIR}/config.json`, 'utf8')) as Record<string, number>;
const WEIGHTS = new Uint8Array(readFileSync(`${DIR}/model.safetensors`));

describe('bad input to a loaded model', () => {
  let model: Model;
  const src = [5, 6, 7, 8];
  let reference: number[];
  let logits: Float32Array;
  beforeAll(async () => {
    model = await loadModel(DIR, { build: BUILD });
    reference = await model.generate(src, { maxNewTokens: 6 });
    logits = model.forward(src, [CONFIG.bos_id, 9, 10]);
  });

  /** After each bad call the model answers exactly as before. */
  async function stillWorks(): Promise<void> {
    expect(await model.generate(src, { maxNewTokens: 6 })).toEqual(reference);
    expect(model.forward(src, [CONFIG.bos_id, 9, 10])).toEqual(logits);
  }

  it.each([
    ['an id outside the source vocabulary', [5, CONFIG.src_vocab_size], /source: id \d+ at position 1 is outside the vocabulary/],
    ['a negative id', [-1, 5], /source: id -1 at position 0/],
    ['a fractional id', [5.5], /source: id 5.5 at position 0/],
    ['an empty source', [], /source: empty sequence/],
    ['a source longer than max_len', new Array(CONFIG.max_len + 1).fill(5), /source: \d+ tokens, more than max_len/],
    ['a source that is all padding', [CONFIG.pad_id, CONFIG.pad_id], /every id is pad_id/],
  ])('rejects %s and keeps working', async (_, ids, message) => {
    expect(await rejectionOf(model.generate(ids as number[]), 'BAD_INPUT')).toMatch(message);
    expect(errorOf(() => model.forward(ids as number[], [CONFIG.bos_id]), 'BAD_INPUT')).toMatch(message);
    await stillWorks();
  });

  it('rejects a bad target (outside the vocabulary, too long, empty) and keeps working', async () => {
    const tooLong = new Array(CONFIG.max_len + 1).fill(CONFIG.bos_id);
    expect(errorOf(() => model.forward(src, [CONFIG.bos_id, CONFIG.tgt_vocab_size]), 'BAD_INPUT')).toMatch(/target: id \d+ at position 1/);
    expect(errorOf(() => model.forward(src, tooLong), 'BAD_INPUT')).toMatch(/target: \d+ tokens, more than max_len/);
    expect(errorOf(() => model.forward(src, []), 'BAD_INPUT')).toMatch(/target: empty sequence/);
    await stillWorks();
  });

  it('rejects maxNewTokens past max_len, and decodeStep out of order', async () => {
    expect(await rejectionOf(model.generate(src, { maxNewTokens: CONFIG.max_len + 1 }), 'BAD_ARGUMENT')).toMatch(/maxNewTokens/);
    model.encode(src);
    expect(errorOf(() => model.decodeStep(CONFIG.bos_id, 1), 'BAD_ARGUMENT')).toMatch(/position 1 must be an integer in \[0, 0\]/);
    model.decodeStep(CONFIG.bos_id, 0);
    expect(errorOf(() => model.decodeStep(CONFIG.tgt_vocab_size, 1), 'BAD_INPUT')).toMatch(/target: id \d+/);
    await stillWorks();
  });

  it('thousands of generate calls leave the memory where it was', async () => {
    const bytes = model.memoryBytes;
    const r = rng(7);
    for (let i = 0; i < 2000; i++) {
      const ids = Array.from({ length: 1 + Math.floor(r(0, CONFIG.max_len)) }, () => 3 + Math.floor(r(0, CONFIG.src_vocab_size - 3)));
      await model.generate(ids, { maxNewTokens: 1 + (i % CONFIG.max_len) });
    }
    expect(model.memoryBytes).toBe(bytes);
    await stillWorks();
  });

  it('is unusable after dispose, with a clear error', async () => {
    const other = await loadModel(DIR, { build: BUILD });
    other.dispose();
    expect(await rejectionOf(other.generate(src), 'DISPOSED')).toMatch(/disposed/);
  });
});

describe('bad model files through loadModel', () => {
  it('names the file and the field or tensor', async () => {
    const cases: [Record<string, unknown>, Uint8Array, string, RegExp][] = [
      [{ ...CONFIG, nhead: 5 }, WEIGHTS, 'BAD_CONFIG', /config: d_model \(\d+\) is not divisible by nhead \(5\)/],
      [{ ...CONFIG, d_model: undefined }, WEIGHTS, 'BAD_CONFIG', /config: missing field "d_model"/],
      [CONFIG, WEIGHTS.subarray(0, WEIGHTS.length - 3), 'BAD_FILE', /weights: /],
      [{ ...CONFIG, dim_feedforward: CONFIG.dim_feedforward + 1 }, WEIGHTS, 'BAD_TENSOR', /weights: tensor "transformer\.encoder\.layers\.0\.linear1\.weight"/],
    ];
    for (const [config, weights, code, message] of cases) {
      expect(await rejectionOf(loadModel({ config, weights }, { build: BUILD }), code)).toMatch(message);
    }
    expect(await rejectionOf(loadModel('/nonexistent/model', { build: BUILD }), 'BAD_CONFIG')).toMatch(/\/nonexistent\/model\/config\.json: file not found/);
  });

  it('refuses a max_len whose memory WebAssembly cannot grant, without a crash', async () => {
    // This model computes its positions (no stored table bounds max_len): only memory can refuse.
    const dir = `${FIXTURES}pre_ln_gelu_computed_pos`;
    const config = { ...JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')), max_len: 1e6 };
    const weights = new Uint8Array(readFileSync(`${dir}/model.safetensors`));
    expect(await rejectionOf(loadModel({ config, weights }, { build: BUILD }), 'OUT_OF_MEMORY')).toMatch(/bytes of WebAssembly memory, more than wasm32's 4 GiB/);
  });

  it('fuzz: every mutated file loads and runs, or is refused with a WasmformerError', async () => {
    const r = rng(2024);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 1500; i++) {
      const bytes = WEIGHTS.slice(0, r(0, 1) < 0.2 ? Math.floor(r(0, WEIGHTS.length)) : WEIGHTS.length);
      for (let flips = Math.floor(r(1, 6)); flips > 0; flips--) {
        // Most flips land in the header, where they change lengths, names, shapes and offsets.
        const at = Math.floor(r(0, 1) < 0.7 ? r(0, Math.min(bytes.length, 2048)) : r(0, bytes.length));
        if (at < bytes.length) bytes[at] ^= 1 << Math.floor(r(0, 8));
      }
      let outcome: string;
      try {
        const model = await loadModel({ config: CONFIG, weights: bytes }, { build: BUILD });
        const ids = await model.generate([5, 6, 7], { maxNewTokens: 3 });
        expect(ids.length).toBeLessThanOrEqual(3);
        outcome = 'loaded';
      } catch (e) {
        if (!(e instanceof WasmformerError)) throw new Error(`mutation ${i}: ${String(e)}`);
        outcome = e.code;
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    expect(outcomes.get('loaded')).toBeGreaterThan(0);
    expect(outcomes.get('BAD_FILE')).toBeGreaterThan(0);
  });
});
