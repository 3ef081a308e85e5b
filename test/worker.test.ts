// createWorkerTranslator in Node (worker_threads): the same protocol a browser's Web Worker runs.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttentionMaps, loadTranslator, WasmformerError, type Translator } from '../dist/index.js';
import { numbersModel } from '../dist/demo.js';
import { createWorkerTranslator, type WorkerTranslator } from '../dist/worker.js';
import { DEMO, readDemo, type Item } from './demo-model.js';
import { rejectionOf } from './expect-error.js';
import { BUILD } from './helpers.js';
import { LONG_CONFIG, writeLongModel } from './long-model.js';

const EN_DE = fileURLToPath(new URL('../models/en-de-messages/', import.meta.url));
const samples = (readDemo('samples.json') as { items: Item[] }).items;
const LONG = samples.reduce((a, b) => (b.greedy_text.length > a.greedy_text.length ? b : a));

describe('a translator in a worker', () => {
  let worker: WorkerTranslator;
  let local: Translator;
  beforeAll(async () => {
    worker = await createWorkerTranslator(numbersModel, { build: BUILD });
    local = await loadTranslator(DEMO, { build: BUILD });
  });
  afterAll(() => worker?.dispose());

  it('says what it loaded, and tokenizes as the tokenizer in this thread does', async () => {
    expect(worker.config).toEqual(local.model.config);
    expect(worker.parameters).toBe(local.model.parameters);
    expect(worker.build).toBe(local.model.build);
    expect(worker.dtype).toBe('f32');
    for (const text of ['4019', '12,345']) {
      expect(await worker.tokenize(text)).toEqual({ ids: local.tokenizer.encode(text), pieces: local.tokenizer.tokenize(text) });
    }
    expect(await rejectionOf(worker.tokenize('12a'), 'BAD_INPUT')).toMatch(/character "a"/);
  });

  it('loads int8 weights when asked, and translates as a q8 model in this thread does', async () => {
    const q8 = await createWorkerTranslator(numbersModel, { build: BUILD, dtype: 'q8' });
    const here = await loadTranslator(DEMO, { build: BUILD, dtype: 'q8' });
    expect(q8.dtype).toBe('q8');
    const texts = samples.map((item) => item.text);
    expect(await q8.translate(texts)).toEqual(await here.translate(texts));
    q8.dispose();
  });

  it('translates as the model in this thread does, streaming ids as they come', async () => {
    for (const item of samples) {
      const ids: number[] = [];
      expect(await worker.translate(item.text, { onToken: (id, index) => ids.push(index === ids.length ? id : -1) })).toBe(item.greedy_text);
      expect(ids).toEqual(item.greedy_ids);
      let streamed = '';
      for await (const piece of worker.stream(item.text)) streamed += piece;
      expect(streamed).toBe(item.greedy_text);
    }
  });

  it('records the attention maps the model in this thread records', async () => {
    const there = new AttentionMaps();
    const here = new AttentionMaps();
    await worker.translate(LONG.text, { attention: there });
    await local.translate(LONG.text, { attention: here });
    expect(there.steps).toBe(here.steps);
    expect(there.steps).toBe(LONG.greedy_ids.length + 1);
    for (let layer = 0; layer < local.model.config.numDecoderLayers; layer++) {
      for (let head = 0; head < local.model.config.decoderHeads; head++) {
        expect(there.cross(layer, head)).toEqual(here.cross(layer, head));
        expect(there.self(layer, head)).toEqual(here.self(layer, head));
      }
    }
  });

  it('queues calls made at once, each with its own result', async () => {
    const texts = await Promise.all(samples.map((item) => worker.translate(item.text)));
    expect(texts).toEqual(samples.map((item) => item.greedy_text));
  });

  it('translates a list of texts as the model in this thread does, with generate options crossing over', async () => {
    const texts = ['4019', '', '12,345', '7'];
    const sentences = new Set<number>();
    expect(await worker.translate(texts, { onToken: (_, __, ___, sentence) => sentences.add(sentence) })).toEqual(await local.translate(texts));
    expect(sentences).toEqual(new Set([0, 2, 3])); // the empty text never ran
    const options = { numBeams: 3, lengthPenalty: 0.5, maxNewTokens: 12 };
    expect(await worker.translate(LONG.text, options)).toBe(await local.translate(LONG.text, options));
    expect(await rejectionOf(worker.translate(['12', 12] as never), 'BAD_ARGUMENT')).toBe('texts[1] must be a string, got 12');
    expect(await rejectionOf(worker.stream('12', { numBeams: 2 }).next(), 'BAD_ARGUMENT')).toMatch(/^stream decodes one hypothesis/);
  });

  it('cancels a call with its signal at once, and the next call works', async () => {
    const controller = new AbortController();
    let tokens = 0;
    const cancelled = worker.translate(LONG.text, { signal: controller.signal, onToken: () => ++tokens === 3 && controller.abort() });
    await expect(cancelled).rejects.toMatchObject({ name: 'AbortError' });
    expect(await worker.translate('4019')).toBe('four thousand nineteen');
    // Leaving a stream early cancels its decoding too.
    let pieces = 0;
    for await (const piece of worker.stream(LONG.text)) {
      expect(piece).toBe(LONG.greedy_text[0]);
      pieces++;
      break;
    }
    expect(pieces).toBe(1);
    expect(await worker.translate('7')).toBe('seven');
  });

  it('a cancel reaches the decoding in the worker: a long decode stops there, not only here', async () => {
    const long = await createWorkerTranslator(writeLongModel(), { build: BUILD });
    try {
      // Alone, this decode runs to max_len; the call queued after it would wait for all of it.
      let start = performance.now();
      let tokens = 0;
      expect((await long.translate('12', { maxNewTokens: 64, onToken: () => tokens++ })).length).toBe(64);
      const msPerToken = (performance.now() - start) / tokens;
      const controller = new AbortController();
      const cancelled = long.translate('12', { signal: controller.signal, onToken: (_, i) => i === 4 && controller.abort() });
      await expect(cancelled).rejects.toMatchObject({ name: 'AbortError' });
      start = performance.now();
      expect(await long.translate('3', { maxNewTokens: 1 })).toHaveLength(1);
      // Far less than the rest of the cancelled decode (about max_len steps of msPerToken).
      expect(performance.now() - start).toBeLessThan((LONG_CONFIG.max_len * msPerToken) / 4);
    } finally {
      long.dispose();
    }
  });

  it('brings the library errors back as WasmformerErrors, and keeps working', async () => {
    expect(await rejectionOf(worker.translate('12a'), 'BAD_INPUT')).toBe('character "a" (U+0061) at position 2 is not in the source vocabulary');
    expect(await rejectionOf(worker.translate(4019 as never), 'BAD_ARGUMENT')).toBe('text must be a string, got 4019');
    expect(await rejectionOf(worker.translate('1', { maxNewToken: 2 } as never), 'BAD_ARGUMENT')).toMatch(/^options\.maxNewToken is not an option/);
    expect(await worker.translate('12')).toBe('twelve');
  });

  it('rejects a model that does not load, naming the file', async () => {
    const message = await rejectionOf(createWorkerTranslator('/nonexistent/model'), 'BAD_CONFIG');
    expect(message).toBe('/nonexistent/model/config.json: file not found');
  });

  it('after dispose, waiting and later calls are DISPOSED', async () => {
    const other = await createWorkerTranslator(DEMO, { build: BUILD });
    const waiting = other.translate(LONG.text);
    other.dispose();
    const error = await waiting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WasmformerError);
    expect((error as WasmformerError).code).toBe('DISPOSED');
    expect(await rejectionOf(other.translate('1'), 'DISPOSED')).toBe('this translator was disposed');
  });

  it('runs its model on helper threads of its own when asked, as one thread would, and ends them all on dispose', async () => {
    const texts = (JSON.parse(readFileSync(new URL('../models/en-de-messages/samples.json', import.meta.url), 'utf8')) as { items: { en: string }[] }).items.map((item) => item.en);
    const here = await loadTranslator(EN_DE, { build: BUILD });
    const before = readdirSync('/proc/self/task').length;
    const threaded = await createWorkerTranslator(EN_DE, { build: BUILD, threads: 2 });
    expect([threaded.threads, threaded.threadsReason]).toEqual([2, null]);
    expect(readdirSync('/proc/self/task').length).toBe(before + 2); // the worker and its helper
    expect(await threaded.translate(texts)).toEqual(await here.translate(texts));
    expect(threaded.threads).toBe(2);
    await threaded.dispose();
    expect(readdirSync('/proc/self/task').length).toBe(before);
    await here.dispose();
  });
});
