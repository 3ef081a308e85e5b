// "Bring your own PyTorch model", as the README says it: the tutorial's model and vocabularies
// exported with tools/seq2seq.py's save_folder (test/io/fixtures/make_tutorial.py does it).
import { describe, expect, it } from 'vitest';
import { loadModel, loadTranslator } from '../../dist/index.js';
import { BUILD } from '../helpers.js';

const FIXTURES = new URL('../io/fixtures/', import.meta.url);

describe('a model exported as the README says', () => {
  it('loads as a translator, with the tutorial vocabularies and their <unk> in both', async () => {
    const translator = await loadTranslator(new URL('tutorial_export/', FIXTURES), { build: BUILD });
    const { tokenizer } = translator;
    expect(tokenizer.unkId).toBe(0);
    // A character outside the source vocabulary is <unk>; the source ends with eos (3).
    expect(tokenizer.encode('abz')).toEqual([4, 5, 0, 3]);
    // <unk> decodes as its name, as torchtext's lookup_tokens gives it.
    expect(tokenizer.decode([4, 0, 5])).toBe('h<unk>i');
    expect(typeof (await translator.translate('abz', { maxNewTokens: 3 }))).toBe('string');
  });

  it('is the same model as the tutorial state dict saved by the official layout', async () => {
    const exported = await loadModel(new URL('tutorial_export/', FIXTURES), { build: BUILD });
    const original = await loadModel(new URL('tutorial/', FIXTURES), { build: BUILD });
    expect(exported.parameters).toBe(original.parameters);
    expect(exported.config).toEqual(original.config);
    const src = [4, 5, 6, 3];
    const tgt = [2, 7, 8];
    expect(exported.forward(src, tgt)).toEqual(original.forward(src, tgt));
  });
});
