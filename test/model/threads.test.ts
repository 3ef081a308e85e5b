// A model on helper threads (loadModel's `threads`): the same bits as one thread in every API
// (logits, greedy, beams, batches of sources of different lengths, q8), transformers' greedy
// outputs on the demo's held-out texts, no thread left after dispose(), and one thread, with
// the reason, where threads cannot be had.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel, loadTranslator, type Model, type Translator } from '../../dist/index.js';
import { rejectionOf } from '../expect-error.js';
import { BUILD, expectSameBits } from '../helpers.js';

const DIR = fileURLToPath(new URL('../../models/en-de-messages/', import.meta.url));

interface Item {
  en: string;
  input_ids: number[];
  greedy_ids: number[]; // with the final eos
  greedy_margin: number;
}
// Every 25th held-out text: 46 sources of 3 to 60 tokens.
const items = (JSON.parse(readFileSync(`${DIR}heldout.json`, 'utf8')) as { items: Item[] }).items.filter((_, i) => i % 25 === 0);
const sources = items.map((item) => item.input_ids);

/** OS threads of this process (Linux): each helper is one. */
const osThreads = (): number => readdirSync('/proc/self/task').length;

describe('a model on two threads', () => {
  let one: Translator;
  let two: Translator;
  beforeAll(async () => {
    one = await loadTranslator(DIR, { build: BUILD });
    two = await loadTranslator(DIR, { build: BUILD, threads: 2 });
  });
  afterAll(async () => {
    await one.dispose();
    await two.dispose();
  });

  it('says it runs on two threads', () => {
    expect(two.model.threads).toBe(2);
    expect(two.model.threadsReason).toBeNull();
    expect(one.model.threads).toBe(1);
  });

  it('gives one thread\'s logits bit for bit', () => {
    for (const item of items.slice(0, 8)) {
      const target = item.greedy_ids.slice(0, -1);
      const decoderIds = [one.model.config.decoderStartId, ...target];
      const a = one.model.forward(item.input_ids, decoderIds);
      const b = two.model.forward(item.input_ids, decoderIds);
      expectSameBits(b, a, item.en);
    }
  });

  it('decodes transformers\' greedy outputs, and one thread\'s, in a batch of sources of different lengths', async () => {
    const got = await two.model.generateBatch(sources, { numBeams: 1, batchSize: 16 });
    expect(got).toEqual(await one.model.generateBatch(sources, { numBeams: 1, batchSize: 16 }));
    const clear = items.map((item, i) => [item, got[i]] as const).filter(([item]) => item.greedy_margin >= 1e-3);
    expect(clear.length).toBeGreaterThan(40);
    for (const [item, ids] of clear) expect(ids, item.en).toEqual(item.greedy_ids.slice(0, -1));
  });

  it('gives one thread\'s beams and texts', async () => {
    const texts = items.slice(0, 12).map((item) => item.en);
    expect(await two.translate(texts)).toEqual(await one.translate(texts));
    const options = { numBeams: 5, numReturnSequences: 3, lengthPenalty: 2 };
    expect(await two.model.search(sources[3], options)).toEqual(await one.model.search(sources[3], options));
  });

  it('streams the same tokens step by step (encode, decodeStep)', () => {
    for (const m of [one.model, two.model]) m.encode(sources[5]);
    let token = one.model.config.decoderStartId;
    for (let pos = 0; pos < 20; pos++) {
      const a = one.model.decodeStep(token, pos).slice();
      const b = two.model.decodeStep(token, pos);
      expectSameBits(b, a, `position ${pos}`);
      token = a.indexOf(Math.max(...a));
    }
  });

  it('gives one thread\'s int8 results', async () => {
    const q8 = await Promise.all([1, 2].map((threads) => loadModel(DIR, { build: BUILD, dtype: 'q8', threads })));
    try {
      const [a, b] = await Promise.all(q8.map((m) => m.generateBatch(sources.slice(0, 16), { numBeams: 4, batchSize: 8 })));
      expect(b).toEqual(a);
    } finally {
      await Promise.all(q8.map((m) => m.dispose()));
    }
  });
});

describe('threads and their lifetime', () => {
  it('leaves no thread running after dispose()', async () => {
    await (await loadModel(DIR, { build: BUILD })).dispose(); // the process's own pools have started
    const before = osThreads();
    const model = await loadModel(DIR, { build: BUILD, threads: 3 });
    expect(osThreads()).toBe(before + 2);
    await model.generate(sources[0]);
    await model.dispose();
    expect(osThreads()).toBe(before);
    expect(await rejectionOf(model.generate(sources[0]), 'DISPOSED')).toMatch(/disposed/);
    expect(() => model.threads).toThrow(/disposed/);
  });

  it("'auto' takes the machine's cores, at most 4", async () => {
    const model = await loadModel(DIR, { build: BUILD, threads: 'auto' });
    expect(model.threads).toBe(Math.min(4, availableParallelism()));
    await model.dispose();
  });

  it('falls back to one thread, and says why, when its helper cannot get a core of its own', async () => {
    // The whole process on one core (taskset): the helper's spinning takes the caller's time
    // and it rarely runs a chunk, so after its warm-up windows the Team retires it.
    const script = `
      const { loadModel } = await import(${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)});
      const model = await loadModel(${JSON.stringify(DIR)}, { build: ${JSON.stringify(BUILD)}, threads: 2 });
      const start = performance.now();
      while (model.threads === 2 && performance.now() - start < 30000) await model.generate(${JSON.stringify(sources[2])}, { numBeams: 1 });
      console.log(JSON.stringify({ threads: model.threads, reason: model.threadsReason, ids: await model.generate(${JSON.stringify(sources[2])}, { numBeams: 1 }) }));
      await model.dispose();`;
    const flags = BUILD === 'relaxed' ? ['--experimental-wasm-relaxed-simd'] : [];
    const out = execFileSync('taskset', ['-c', '0', process.execPath, ...flags, '--input-type=module', '-e', script], { encoding: 'utf8' });
    const result = JSON.parse(out) as { threads: number; reason: string; ids: number[] };
    expect(result.threads).toBe(1);
    expect(result.reason).toMatch(/^fell back from 2 to 1 threads: the helpers did \d+% of the last 1024 parallel kernel calls' work, not the 50% they would on cores of their own \(other processes are contending for the cores\)$/);
    expect(result.ids).toEqual(items[2].greedy_ids.slice(0, -1));
  }, 60_000);

  it('runs on one thread, and says why, where there is no SharedArrayBuffer', async () => {
    for (const [name, value] of [['crossOriginIsolated', false], ['SharedArrayBuffer', undefined]] as const) {
      vi.stubGlobal(name, value);
      try {
        const model = await loadModel(DIR, { build: BUILD, threads: 2 });
        expect(model.threads, name).toBe(1);
        expect(model.threadsReason, name).toMatch(/^SharedArrayBuffer is not available here: a page must be cross-origin isolated \(served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp\)$/);
        expect(await model.generate(sources[1])).toEqual(items[1].greedy_ids.slice(0, -1));
        await model.dispose();
      } finally {
        vi.unstubAllGlobals();
      }
    }
  });

  it('runs on one thread, and says why, in an engine without WebAssembly threads', async () => {
    // An engine whose WebAssembly.Memory refuses `shared`, as one without the threads proposal does.
    const Memory = WebAssembly.Memory;
    const NoThreads = function (descriptor: WebAssembly.MemoryDescriptor) {
      if (descriptor.shared) throw new TypeError('shared memories are not supported');
      return new Memory(descriptor);
    };
    vi.stubGlobal('WebAssembly', Object.assign(Object.create(WebAssembly) as typeof WebAssembly, { Memory: NoThreads }));
    try {
      const model = await loadModel(DIR, { build: BUILD, threads: 2 });
      expect([model.threads, model.threadsReason]).toEqual([1, 'this engine cannot make a shared WebAssembly.Memory (no WebAssembly threads)']);
      expect(await model.generate(sources[1])).toEqual(items[1].greedy_ids.slice(0, -1));
      await model.dispose();
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
