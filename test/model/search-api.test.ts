// The decoding API around the searches: defaults from the generation config, streams, batches
// larger than one step holds, onToken, cancellation, and options that cannot work together.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttentionMaps, loadModel, loadTranslator, type Model, type Translator } from '../../dist/index.js';
import { rejectionOf } from '../expect-error.js';
import { BUILD } from '../helpers.js';

const DIR = fileURLToPath(new URL('../fixtures/generation/swish_shared_vocab/', import.meta.url));
const SOURCES = (JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as { sources: number[][] }).sources;
const TINY = fileURLToPath(new URL('../fixtures/shared/marian-tiny/', import.meta.url));

describe('decoding by the generation config, and against it', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(DIR, { build: BUILD });
  });

  it('generate() takes num_beams from generation_config.json; stream() decodes greedily whatever it says', async () => {
    expect(model.config.generation.numBeams).toBe(4);
    for (const src of SOURCES.slice(0, 4)) {
      expect(await model.generate(src)).toEqual(await model.generate(src, { numBeams: 4 }));
      const streamed: number[] = [];
      for await (const id of model.stream(src)) streamed.push(id);
      expect(streamed).toEqual(await model.generate(src, { numBeams: 1 }));
    }
    expect(await rejectionOf(model.stream(SOURCES[0], { numBeams: 2 }).next(), 'BAD_ARGUMENT')).toMatch(/^stream decodes one hypothesis/);
  });

  it('a batch larger than one step holds (40 sources x 4 beams) still gives each source its own ids, in order', async () => {
    const sources = Array.from({ length: 40 }, (_, i) => SOURCES[i % SOURCES.length]);
    const alone = await Promise.all(SOURCES.map((src) => model.generate(src)));
    const sentences: number[] = [];
    const got = await model.generateBatch(sources, { onToken: (_, __, ___, sentence) => sentences.push(sentence) });
    expect(got).toEqual(sources.map((_, i) => alone[i % SOURCES.length]));
    expect(new Set(sentences)).toEqual(new Set(sources.keys()));
  });

  it('onToken follows the leading beam and ends on the hypothesis returned', async () => {
    const reports: number[][] = [];
    const ids = await model.generate(SOURCES[0], { onToken: (id, index, hypothesis) => {
      expect(hypothesis[index]).toBe(id);
      expect(hypothesis.length).toBe(index + 1);
      reports.push([...hypothesis]);
    } });
    expect(reports.length).toBeGreaterThan(1);
    expect(reports[reports.length - 1]).toEqual(ids);
  });

  it('search() returns numReturnSequences hypotheses, best first, and generate() the first', async () => {
    const found = await model.search(SOURCES[1], { numBeams: 5, numReturnSequences: 3 });
    expect(found).toHaveLength(3);
    for (let i = 1; i < found.length; i++) expect(found[i].score).toBeLessThanOrEqual(found[i - 1].score);
    expect(await model.generate(SOURCES[1], { numBeams: 5, numReturnSequences: 3 })).toEqual(found[0].ids);
    const greedy = await model.search(SOURCES[1], { numBeams: 1 });
    expect(greedy).toHaveLength(1);
    expect(greedy[0].score).toBeLessThan(0); // its log-probability over its length
  });

  it('an AbortSignal cancels search() and generateBatch(), and the model goes on', async () => {
    const before = await model.generateBatch(SOURCES, { numBeams: 1 });
    const controller = new AbortController();
    let steps = 0;
    const cancelled = model.generateBatch(SOURCES, { onToken: () => ++steps === 3 && controller.abort(new DOMException('enough', 'AbortError')), signal: controller.signal });
    await expect(cancelled).rejects.toThrow('enough');
    await expect(model.search(SOURCES[0], { signal: AbortSignal.abort() })).rejects.toThrow();
    // What the cancelled calls left behind changes nothing: the same ids as before them.
    expect(await model.generateBatch(SOURCES, { numBeams: 1 })).toEqual(before);
  });

  it.each([
    ['numReturnSequences above numBeams', { numBeams: 2, numReturnSequences: 3 }, /^numReturnSequences must be an integer in \[1, 2\], got 3$/],
    ['several sequences without beams or sampling', { numBeams: 1, numReturnSequences: 2 }, /^numReturnSequences must be an integer in \[1, 1\], got 2$/],
    ['zero beams', { numBeams: 0 }, /^numBeams must be an integer in \[1, 256\], got 0$/],
    ['a maxLength beyond the positions', { maxLength: 1000 }, /^maxLength must be an integer in \[1, 65\], got 1000$/],
    ['a forced eos outside the vocabulary', { forcedEosTokenId: 320 }, /^forcedEosTokenId must be an integer in \[0, 319\], got 320$/],
    ['a bad word outside the vocabulary', { badWordsIds: [[3, -1]] }, /^badWordsIds must be an integer in \[0, 319\], got -1$/],
    ['an empty bad word', { badWordsIds: [[]] }, /^options\.badWordsIds must be a list of non-empty lists of token ids/],
    ['a top-p of 0', { topP: 0 }, /^options\.topP must be a number in \(0, 1\]/],
    ['attention with beams', { attention: new AttentionMaps() }, /^options\.attention records one hypothesis of one source/],
  ])('refuses %s with BAD_ARGUMENT, touching nothing', async (_, options, message) => {
    const before = await model.generate(SOURCES[2]);
    expect(await rejectionOf(model.generate(SOURCES[2], options as never), 'BAD_ARGUMENT')).toMatch(message);
    expect(await rejectionOf(model.generateBatch([SOURCES[2]], options as never), 'BAD_ARGUMENT')).toMatch(message);
    expect(await model.generate(SOURCES[2])).toEqual(before);
  });

  it('names the source of a batch that is wrong, and refuses an empty batch', async () => {
    expect(await rejectionOf(model.generateBatch([SOURCES[0], [5, 999]]), 'BAD_INPUT')).toBe('source 1: id 999 at position 1 is outside the vocabulary [0, 320)');
    expect(await rejectionOf(model.generateBatch([]), 'BAD_INPUT')).toBe('sources: no source to decode');
    expect(await rejectionOf(model.generateBatch('5,6' as never), 'BAD_INPUT')).toMatch(/^sources: expected an array of token id arrays/);
  });
});

describe('translating lists of texts', () => {
  let translator: Translator;
  beforeAll(async () => {
    translator = await loadTranslator(TINY, { build: BUILD });
  });

  it('translates each text of a list as it translates it alone, empty texts to empty texts', async () => {
    const texts = ['Hello world.', '', 'A longer sentence to translate, with a comma.', 'Yes', ''];
    const alone = await Promise.all(texts.map((t) => translator.translate(t)));
    expect(await translator.translate(texts)).toEqual(alone);
    expect(await translator.translate([])).toEqual([]);
  });
});
