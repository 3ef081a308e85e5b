// The library as a hostile (or merely careless) user drives it: concurrent calls, options of the
// wrong type, state reached from outside, every way to get a raw exception or a wrong answer.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttentionMaps, loadModel, loadTranslator, type Model, type Translator } from '../../dist/index.js';
import { DEMO, readDemo, type Item } from '../demo-model.js';
import { errorOf, rejectionOf } from '../expect-error.js';
import { BUILD } from '../helpers.js';
import { FIXTURES } from './fixtures.js';

const DIR = `${FIXTURES}source_padding`;
const CONFIG = JSON.parse(readFileSync(`${DIR}/config.json`, 'utf8')) as Record<string, number>;
/** Ten sources of the fixture's vocabulary, of different lengths, some padded. */
const SOURCES = Array.from({ length: 10 }, (_, i) => Array.from({ length: 2 + (i % 5) }, (_, j) => 3 + ((i * 7 + j * 3) % (CONFIG.src_vocab_size - 3))));

describe('concurrent calls on one model', () => {
  let model: Model;
  let alone: number[][];
  beforeAll(async () => {
    model = await loadModel(DIR, { build: BUILD });
    alone = [];
    for (const src of SOURCES) alone.push(await model.generate(src, { maxNewTokens: 8 }));
  });

  it('queue: ten generate calls at once all succeed, each with the ids it gets alone', async () => {
    const ids = await Promise.all(SOURCES.map((src) => model.generate(src, { maxNewTokens: 8 })));
    expect(ids).toEqual(alone);
  });

  it('ten translate calls at once on the demo model give what each gives alone', async () => {
    const translator = await loadTranslator(DEMO, { build: BUILD });
    const items = (readDemo('samples.json') as { items: Item[] }).items.slice(0, 10);
    const texts = await Promise.all(items.map((item) => translator.translate(item.text)));
    expect(texts).toEqual(items.map((item) => item.greedy_text));
  });

  it('a paused stream goes on with its own ids after other calls used the model', async () => {
    const stream = model.stream(SOURCES[0], { maxNewTokens: 8 });
    const got: number[] = [];
    for (let i = 0; i < alone[0].length; i++) {
      const next = await stream.next();
      expect(next.done).toBe(false);
      got.push(next.value as number);
      // Between every two tokens: a whole other decoding, a teacher-forced pass, a bare encode.
      expect(await model.generate(SOURCES[1 + (i % 9)], { maxNewTokens: 8 })).toEqual(alone[1 + (i % 9)]);
      model.forward(SOURCES[2], [CONFIG.bos_id, 9]);
      model.encode(SOURCES[3]);
    }
    expect((await stream.next()).done).toBe(true);
    expect(got).toEqual(alone[0]);
  });

  it('streams consumed side by side each get their own ids', async () => {
    const streams = SOURCES.slice(0, 4).map((src) => model.stream(src, { maxNewTokens: 8 }));
    const got: number[][] = streams.map(() => []);
    for (let live = streams.length; live > 0;) {
      live = 0;
      for (let i = 0; i < streams.length; i++) {
        const next = await streams[i].next();
        if (!next.done) {
          got[i].push(next.value);
          live++;
        }
      }
    }
    expect(got).toEqual(alone.slice(0, 4));
  });

  it('decodeStep goes on with its own state after other calls used the model', async () => {
    const src = SOURCES[0];
    const tgt = [CONFIG.bos_id, 9, 10];
    const forward = model.forward(src, tgt);
    const vocab = CONFIG.tgt_vocab_size;
    model.encode(src);
    expect(Array.from(model.decodeStep(tgt[0], 0))).toEqual(Array.from(forward.subarray(0, vocab)));
    // Between two steps: a whole decoding, a teacher-forced pass (each with a state of its own).
    await model.generate(SOURCES[1], { maxNewTokens: 4 });
    model.forward(SOURCES[2], [CONFIG.bos_id, 11]);
    expect(Array.from(model.decodeStep(tgt[1], 1))).toEqual(Array.from(forward.subarray(vocab, 2 * vocab)));
  });

  it('decodeStep gives the logits of forward, position by position, and a new source starts afresh', () => {
    const src = SOURCES[4];
    const tgt = [CONFIG.bos_id, 9, 10, 11];
    const vocab = CONFIG.tgt_vocab_size;
    const forward = model.forward(src, tgt);
    const stepped = (): number[] => {
      model.encode(src);
      return tgt.flatMap((token, pos) => Array.from(model.decodeStep(token, pos)));
    };
    expect(stepped()).toEqual(Array.from(forward));
    // A partial decode of another source, then this one again: nothing of the other remains.
    model.encode(SOURCES[5]);
    model.decodeStep(CONFIG.bos_id, 0);
    model.decodeStep(12, 1);
    model.decodeStep(13, 2);
    expect(stepped()).toEqual(Array.from(forward));
    // Rewinding to an earlier position recomputes from there.
    model.encode(src);
    for (const [pos, token] of tgt.entries()) model.decodeStep(token, pos);
    const again = Array.from(model.decodeStep(tgt[2], 2));
    expect(again).toEqual(Array.from(forward.subarray(2 * vocab, 3 * vocab)));
  });

  it('a signal cancels a call: it rejects with the reason, and the queue goes on', async () => {
    const controller = new AbortController();
    const cancelled = model.generate(SOURCES[0], {
      maxNewTokens: 8,
      signal: controller.signal,
      onToken: (_, index) => index === 1 && controller.abort(),
    });
    const after = model.generate(SOURCES[1], { maxNewTokens: 8 });
    await expect(cancelled).rejects.toMatchObject({ name: 'AbortError' });
    expect(await after).toEqual(alone[1]);
    const already = AbortSignal.abort(new Error('not wanted'));
    await expect(model.generate(SOURCES[0], { signal: already })).rejects.toThrow('not wanted');
    const stream = model.stream(SOURCES[0], { signal: AbortSignal.abort() });
    await expect(stream.next()).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('a failed call changes nothing', () => {
  let model: Model;
  let reference: number[];
  beforeAll(async () => {
    model = await loadModel(DIR, { build: BUILD });
    reference = await model.generate(SOURCES[0], { maxNewTokens: 8 });
  });

  it('the config cannot be changed from outside, so the model never trusts a size it did not allocate', async () => {
    expect(Object.isFrozen(model.config)).toBe(true);
    expect(() => {
      (model.config as { maxLen: number }).maxLen = 1e6;
    }).toThrow(TypeError);
    expect(model.config.maxLen).toBe(CONFIG.max_len);
    expect(await rejectionOf(model.generate(new Array(300_000).fill(5)), 'BAD_INPUT')).toMatch(/300000 tokens, more than max_len = \d+/);
    expect(await model.generate(SOURCES[0], { maxNewTokens: 8 })).toEqual(reference);
  });

  it('a caller changing its source array during a stream does not change the stream', async () => {
    const src = SOURCES[0].slice();
    const stream = model.stream(src, { maxNewTokens: 8 });
    const first = await stream.next();
    src.fill(CONFIG.pad_id);
    await model.generate(SOURCES[1]); // forces the stream to put its caches back, from its own copy
    const rest: number[] = [];
    for await (const id of stream) rest.push(id);
    expect([first.value, ...rest]).toEqual(reference);
  });

  it.each([
    ['null options', null, /^options must be an object, got null$/],
    ['options that are a number', 5, /^options must be an object, got 5$/],
    ['an onToken that is not a function', { onToken: 'print' }, /^options\.onToken must be a function, got "print"$/],
    ['a misspelt option', { maxNewToken: 3 }, /^options\.maxNewToken is not an option \(maxNewTokens, maxLength, minNewTokens, .*, onToken, attention, signal\)$/],
    ['maxNewTokens as a string', { maxNewTokens: '3' }, /^options\.maxNewTokens must be an integer, got "3"$/],
    ['maxNewTokens below 0', { maxNewTokens: -1 }, /^maxNewTokens must be an integer in \[0, max_len = \d+\], got -1$/],
    ['attention that is not an AttentionMaps', { attention: {} }, /^options\.attention must be an AttentionMaps/],
    ['a signal that is not an AbortSignal', { signal: { aborted: false } }, /^options\.signal must be an AbortSignal, got an object$/],
  ])('refuses %s with BAD_ARGUMENT naming it, and keeps working', async (_, options, message) => {
    expect(await rejectionOf(model.generate(SOURCES[0], options as never), 'BAD_ARGUMENT')).toMatch(message);
    await expect(model.stream(SOURCES[0], options as never).next()).rejects.toThrow(message);
    expect(await model.generate(SOURCES[0], { maxNewTokens: 8 })).toEqual(reference);
  });

  it('refuses source ids that are not an array of ids', async () => {
    for (const [src, message] of [
      ['4019', 'source: expected an array of token ids, got "4019"'],
      [4019, 'source: expected an array of token ids, got 4019'],
      [null, 'source: expected an array of token ids, got null'],
      [[5, '6'], 'source: id "6" at position 1 is outside the vocabulary [0, 13)'.replace('13', String(CONFIG.src_vocab_size))],
    ] as const) {
      expect(await rejectionOf(model.generate(src as never), 'BAD_INPUT')).toBe(message);
    }
  });

  it('AttentionMaps refuses a layer or head it does not hold', async () => {
    const maps = new AttentionMaps();
    expect(errorOf(() => maps.cross(0, 0), 'BAD_ARGUMENT')).toMatch(/nothing recorded yet/);
    await model.generate(SOURCES[0], { attention: maps, maxNewTokens: 3 });
    const { numDecoderLayers, decoderHeads: nhead } = model.config;
    for (const [layer, head, message] of [
      [0, -1, `cross: head must be an integer in [0, ${nhead}), got -1`],
      [0, nhead, `cross: head must be an integer in [0, ${nhead}), got ${nhead}`],
      [numDecoderLayers, 0, `cross: layer must be an integer in [0, ${numDecoderLayers}), got ${numDecoderLayers}`],
      [0.5, 0, `cross: layer must be an integer in [0, ${numDecoderLayers}), got 0.5`],
    ] as const) {
      expect(errorOf(() => maps.cross(layer, head), 'BAD_ARGUMENT')).toBe(message);
    }
    expect(errorOf(() => maps.self(0, nhead), 'BAD_ARGUMENT')).toBe(`self: head must be an integer in [0, ${nhead}), got ${nhead}`);
  });
});

describe('text in, text out, as a careless caller writes it', () => {
  let translator: Translator;
  beforeAll(async () => {
    translator = await loadTranslator(DEMO, { build: BUILD });
  });

  it('an empty text translates to an empty text, without running the model', async () => {
    let tokens = 0;
    expect(await translator.translate('', { onToken: () => tokens++ })).toBe('');
    const pieces: string[] = [];
    for await (const piece of translator.stream('')) pieces.push(piece);
    expect(pieces).toEqual([]);
    expect(tokens).toBe(0);
  });

  it('a text that is not a string is BAD_ARGUMENT, not a crash or a guess', async () => {
    for (const text of [4019, null, undefined, { text: '4019' }]) {
      expect(await rejectionOf(translator.translate(text as never), 'BAD_ARGUMENT')).toMatch(/^text must be a string, got /);
      await expect(translator.stream(text as never).next()).rejects.toThrow(/^text must be a string/);
    }
    // A list is a batch of texts, each of which must be a string; a stream takes one text.
    expect(await rejectionOf(translator.translate(['4019', 4019] as never), 'BAD_ARGUMENT')).toBe('texts[1] must be a string, got 4019');
    await expect(translator.stream(['4019'] as never).next()).rejects.toThrow(/^text must be a string/);
    expect(await translator.translate('4019')).toBe('four thousand nineteen');
  });

  it('load options of the wrong type are BAD_ARGUMENT naming the option', async () => {
    for (const [options, message] of [
      [null, /^options must be an object, got null$/],
      [{ build: 'fast' }, /^options\.build must be 'auto', 'simd' or 'relaxed', got "fast"$/],
      [{ onProgress: 1 }, /^options\.onProgress must be a function, got 1$/],
      [{ wasm: 42 }, /^options\.wasm must be a path, a URL, an ArrayBuffer or a Uint8Array, got 42$/],
      [{ threads: 0 }, /^options\.threads must be 'auto' or an integer in \[1, 64\], got 0$/],
      [{ threads: 1.5 }, /^options\.threads must be 'auto' or an integer in \[1, 64\], got 1\.5$/],
      [{ threads: 'all' }, /^options\.threads must be 'auto' or an integer in \[1, 64\], got "all"$/],
      [{ thread: 2 }, /^options\.thread is not an option/],
    ] as const) {
      expect(await rejectionOf(loadModel(DEMO, options as never), 'BAD_ARGUMENT')).toMatch(message);
      expect(await rejectionOf(loadTranslator(DEMO, options as never), 'BAD_ARGUMENT')).toMatch(message);
    }
  });
});

describe('files that are not what they should be', () => {
  const config = readFileSync(`${DIR}/config.json`, 'utf8');

  it.each([
    ['a zip that torch.save did not write', Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, ...new Array(100).fill(7)]),
      /^weights: a zip archive whose first entry is not <archive>\/data\.pkl: not one that torch\.save wrote$/],
    ["PyTorch's legacy pickle", Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, ...new Array(100).fill(7)]),
      /^weights: header length \d+ is over the 100000000-byte limit: this is a Python pickle \(PyTorch's legacy torch\.save format\?\), not safetensors$/],
    ['an HTML page', new TextEncoder().encode('<!DOCTYPE html><html><body>Not found</body></html>'),
      /^weights: header length \d+ is over the 100000000-byte limit: this is an HTML page \(a wrong URL, or a server's error page\?\), not safetensors$/],
    ['a Git LFS pointer', new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 3781176\n'),
      /: this is a Git LFS pointer, not the file it stands for \(git lfs pull fetches it\), not safetensors$/],
    ['config.json itself', new TextEncoder().encode(config), /: this is JSON text, not safetensors$/],
  ])('says the weights are %s', async (_, weights, message) => {
    expect(await rejectionOf(loadModel({ config, weights }, { build: BUILD }), 'BAD_FILE')).toMatch(message);
  });

  it('a bad options.wasm names the file or says what is wrong with it', async () => {
    expect(await rejectionOf(loadModel(DIR, { wasm: '/nonexistent/kernels.wasm' }), 'BAD_FILE')).toBe('/nonexistent/kernels.wasm: file not found');
    expect(await rejectionOf(loadModel(DIR, { wasm: 'http://127.0.0.1:1/kernels.wasm' }), 'BAD_FILE')).toMatch(/^http:\/\/127\.0\.0\.1:1\/kernels\.wasm: fetch failed/);
    expect(await rejectionOf(loadModel(DIR, { wasm: new Uint8Array([0, 97, 115, 109, 9, 9]) }), 'BAD_FILE')).toMatch(/^options\.wasm: not a WebAssembly module this engine compiles/);
    const notOurs = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]); // an empty, valid module
    expect(await rejectionOf(loadModel(DIR, { wasm: notOurs }), 'BAD_FILE')).toBe("options.wasm: not wasmformer's kernel module (it lacks heapBase and relaxed)");
    expect((await loadModel(DIR, { build: BUILD })).parameters).toBeGreaterThan(0);
  });
});
