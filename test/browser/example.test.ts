// The browser example, end to end: examples/serve.js serves the repository (the built dist/ and
// the demo model), Debian's Chromium opens examples/browser/ and a person's typing is simulated.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../examples/serve.js';
import { writeLongModel } from '../long-model.js';
import { launchChromium } from './chromium.js';

/** A hand-picked held-out pair of the English -> German demo, with transformers' greedy and beam-4 outputs. */
interface Sample {
  en: string;
  greedy: string;
  greedy_margin: number;
  beam4: string;
}

const ROOT = new URL('../../', import.meta.url);
const SCREENSHOTS = new URL('test/screenshots/', ROOT);
const samples = JSON.parse(readFileSync(new URL('models/en-de-messages/samples.json', ROOT), 'utf8')).items as Sample[];
// A short, a middle and a long input of the demo's samples, each with a clear greedy choice at every step.
const CASES = ['Spanish (Dvorak)', 'Switch to workspace 3', 'Is the package %s installed?'].map((en) => samples.find((s) => s.en === en)!);
// The numbers demo (the tutorial's layout), for the library loaded without the example.
const NUMBERS = JSON.parse(readFileSync(new URL('models/numbers/samples.json', ROOT), 'utf8')).items
  .find((s: { text: string }) => s.text === '4019') as { src_ids: number[]; greedy_ids: number[] };

let server: { url: string; close: () => Promise<void> };
let browser: Browser;
let page: Page;
const problems: string[] = []; // page errors and console errors, which no test expects

beforeAll(async () => {
  // /long/ serves a model whose decodings run to max_len (1024 steps): a long decode.
  server = await startServer({ port: 0, mounts: { '/long/': writeLongModel() } });
  browser = await launchChromium();
  // A short viewport: full-page screenshots then end where the page does.
  page = await browser.newPage({ viewport: { width: 860, height: 400 } });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  await page.goto(server.url);
  await page.waitForSelector('#source:enabled');
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

afterEach(() => {
  expect(problems).toEqual([]);
});

/** Types text into the page and waits until its decoding ends (done or failed). */
async function type(text: string): Promise<void> {
  await page.fill('#source', text);
  await page.waitForSelector(`#output[data-source="${text}"]`);
}

/** What the page showed, recorded in the page from the last record() on. */
interface Recording {
  /** The output's text after each change. */
  texts: string[];
  /** The output's text at each animation frame: what the browser got to paint. */
  frames: string[];
  /** The texts whose decodings ended (data-source set). */
  ended: string[];
}

/** Starts a new recording of the page's output (MutationObserver + a requestAnimationFrame loop). */
function record(): Promise<void> {
  return page.evaluate(() => {
    const output = document.querySelector<HTMLElement>('#output')!;
    const log: Recording = { texts: [], frames: [], ended: [] };
    const w = window as unknown as { log?: Recording; stop?: () => void };
    w.stop?.();
    w.log = log;
    const observer = new MutationObserver((changes) => {
      for (const change of changes) {
        if (change.type === 'attributes') {
          if (output.dataset.source !== undefined) log.ended.push(output.dataset.source);
        } else {
          log.texts.push(output.textContent ?? '');
        }
      }
    });
    observer.observe(output, { childList: true, characterData: true, subtree: true, attributes: true, attributeFilter: ['data-source'] });
    let frame = requestAnimationFrame(function sample() {
      log.frames.push(output.textContent ?? '');
      frame = requestAnimationFrame(sample);
    });
    w.stop = () => {
      observer.disconnect();
      cancelAnimationFrame(frame);
    };
  });
}

function recording(): Promise<Recording> {
  return page.evaluate(() => (window as unknown as { log: Recording }).log);
}

/** The heat map as a PNG data URL, and how many distinct colours its pixels have. */
function heatmap(): Promise<{ url: string; colours: number }> {
  return page.evaluate(() => {
    const canvas = document.querySelector<HTMLCanvasElement>('#heatmap')!;
    if (canvas.width === 0) return { url: '', colours: 0 };
    const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
    const colours = new Set<number>();
    for (let i = 0; i < data.length; i += 4) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return { url: canvas.toDataURL(), colours: colours.size };
  });
}

describe('the browser example', () => {
  it('has test cases whose greedy choices are clear', () => {
    // transformers' greedy decoding chose every token of these by a margin float rounding cannot flip.
    for (const c of CASES) expect(c.greedy_margin).toBeGreaterThan(0.2);
  });

  it('loads the model and says which kernels run, on two threads: the server made the page cross-origin isolated', async () => {
    await page.waitForSelector('#output[data-source]'); // the page translates its initial text
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(await page.textContent('#status')).toMatch(/M parameters, loaded in \d+ ms, (relaxed SIMD|SIMD128) kernels on 2 threads, in a worker/);
  });

  it.each(CASES)('translates "$en" as transformers does, one token at a time, then with beams', async ({ en, greedy, beam4 }) => {
    await record();
    await type(en);
    expect(await page.textContent('#output')).toBe(greedy);
    expect(await page.textContent('#beam')).toMatch(new RegExp(`^beam search, 4 beams \\(\\d+ ms\\): ${beam4.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    expect(await page.textContent('#error')).toBe('');
    expect(await page.textContent('#status')).toMatch(/\d+ steps in [\d.]+ ms: \d+ tokens\/s/);
    const { texts } = await recording();
    // Streamed from the worker a piece per token: each text shown extends the one before, up to the translation.
    const shown = texts.filter((t, i) => t !== '' && t !== texts[i - 1]);
    expect(shown.length).toBeGreaterThan(1);
    shown.forEach((t, i) => expect(greedy.startsWith(t) && (i === 0 || t.startsWith(shown[i - 1])), t).toBe(true));
    expect(shown[shown.length - 1]).toBe(greedy);
    await page.screenshot({ path: new URL(`${en.replace(/\W/g, '_')}.png`, SCREENSHOTS).pathname, fullPage: true });
  });

  it('draws the cross-attention of the chosen layer and head', async () => {
    await type(CASES[2].en);
    const drawn: string[] = [];
    for (const [layer, head] of [['0', '0'], ['0', '1'], ['1', '0']]) {
      await page.selectOption('#layer', layer);
      await page.selectOption('#head', head);
      const { url, colours } = await heatmap();
      expect(colours, `layer ${layer} head ${head}`).toBeGreaterThan(20); // weights in many shades, and labels
      drawn.push(url);
    }
    expect(new Set(drawn).size).toBe(3);
    // The picture for the README: the last decoder layer, whose heads align the words.
    await page.selectOption('#layer', '2');
    await page.selectOption('#head', '0');
    await page.screenshot({ path: new URL('example.png', SCREENSHOTS).pathname, fullPage: true });
    // UPDATE_SCREENSHOT=1 refreshes the README's picture from this one.
    if (process.env.UPDATE_SCREENSHOT) copyFileSync(new URL('example.png', SCREENSHOTS), new URL('docs/browser.png', ROOT));
  });

  it('shows a text too long for the model as an error in the page, then recovers', async () => {
    await type('x '.repeat(600).trim());
    expect(await page.textContent('#error')).toBe('source: 601 tokens, more than max_len = 512');
    expect(await page.textContent('#output')).toBe('');
    expect((await heatmap()).colours).toBe(0);
    await type(CASES[1].en);
    expect(await page.textContent('#error')).toBe('');
    expect(await page.textContent('#output')).toBe(CASES[1].greedy);
  });
});

describe('the example served without cross-origin isolation', () => {
  it('runs on one thread, says why, and translates as on two', async () => {
    const plain = await startServer({ port: 0, isolated: false });
    const tab = await browser.newPage();
    tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    try {
      await tab.goto(plain.url);
      await tab.waitForSelector('#output[data-source]');
      expect(await tab.evaluate(() => crossOriginIsolated)).toBe(false);
      expect(await tab.textContent('#status')).toMatch(/kernels on 1 thread, in a worker \(SharedArrayBuffer is not available here: a page must be cross-origin isolated/);
      for (const { en, greedy, beam4 } of CASES) {
        await tab.fill('#source', en);
        await tab.waitForSelector(`#output[data-source="${en}"]`);
        expect(await tab.textContent('#output')).toBe(greedy);
        expect(await tab.textContent('#beam')).toContain(`: ${beam4}`);
      }
    } finally {
      await tab.close();
      await plain.close();
    }
  });
});

describe('the library in a page, without the example', () => {
  it('does not remember a failed download of the kernels: the next load works', async () => {
    const tab = await browser.newPage();
    let requests = 0;
    await tab.route('**/wasmformer.*.wasm', (route) => (requests++ === 0 ? route.fulfill({ status: 503, body: 'busy' }) : route.continue()));
    await tab.goto(new URL('/dist/', server.url).href); // any page of the server's origin
    // A string, so that vitest does not rewrite the page's import().
    const result = await tab.evaluate(`(async () => {
      const { loadModel } = await import('/dist/index.js');
      const first = await loadModel('/models/numbers/').then(() => 'loaded', (e) => e.code + ': ' + e.message);
      const model = await loadModel('/models/numbers/');
      return { first, ids: await model.generate(${JSON.stringify(NUMBERS.src_ids)}) };
    })()`) as { first: string; ids: number[] };
    expect(result.first).toMatch(/^BAD_FILE: http:\/\/127\.0\.0\.1:\d+\/dist\/wasmformer\.(simd|relaxed)\.wasm: HTTP 503/);
    expect(result.ids).toEqual(NUMBERS.greedy_ids);
    expect(requests).toBe(2);
    await tab.close();
  });
});

describe('a long decode in the worker (a model that decodes to max_len, 1024 steps)', () => {
  let long: Page;
  beforeAll(async () => {
    long = await browser.newPage({ viewport: { width: 860, height: 400 } });
    long.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await long.goto(`${server.url}?model=/long/`);
    await long.waitForSelector('#output[data-source]', { timeout: 60_000 }); // its first text, decoded
  });
  afterAll(() => long?.close());

  /** Waits until the page's decoding of text ends (done or failed). */
  const ended = (text: string) => long.waitForSelector(`#output[data-source="${text}"]`, { timeout: 60_000 });

  it('cancels a decoding when the text changes: only the last one ends', async () => {
    await long.evaluate(() => {
      const output = document.querySelector<HTMLElement>('#output')!;
      const w = window as unknown as { ends: string[]; longest: number };
      w.ends = [];
      w.longest = 0;
      new MutationObserver(() => {
        if (output.dataset.source !== undefined) w.ends.push(output.dataset.source);
        w.longest = Math.max(w.longest, output.textContent!.length);
      }).observe(output, { childList: true, characterData: true, subtree: true, attributes: true });
    });
    await long.fill('#source', '12');
    await long.waitForFunction(() => (document.querySelector('#output')!.textContent ?? '').length >= 20);
    await long.fill('#source', '345');
    await ended('345');
    const ends = await long.evaluate(() => (window as unknown as { ends: string[] }).ends);
    expect(ends).toEqual(['345']); // the first decoding stopped part-way and never counted as ended
    expect(await long.textContent('#output')).toHaveLength(1024);
  });

  it('keeps typing responsive: no main-thread task over 50 ms while it decodes', async () => {
    await long.evaluate(() => {
      const w = window as unknown as { longTasks: number[]; keyDelays: number[]; lengths: number[] };
      w.longTasks = [];
      w.keyDelays = []; // from a key press to its handler: how long the main thread kept it waiting
      w.lengths = []; // the output's length at each frame
      new PerformanceObserver((list) => list.getEntries().forEach((e) => w.longTasks.push(e.duration))).observe({ type: 'longtask' });
      document.querySelector('#source')!.addEventListener('keydown', (e) => w.keyDelays.push(performance.now() - e.timeStamp));
      const output = document.querySelector('#output')!;
      requestAnimationFrame(function sample() {
        w.lengths.push(output.textContent!.length);
        requestAnimationFrame(sample);
      });
    });
    const read = () => long.evaluate(() => {
      const { longTasks, keyDelays, lengths } = window as unknown as { longTasks: number[]; keyDelays: number[]; lengths: number[] };
      return { longTasks: [...longTasks], keyDelays: [...keyDelays], lengths: [...lengths] };
    });
    // The measurement can fail: a task of 120 ms on the main thread is seen.
    await long.evaluate(() => setTimeout(() => {
      const t = performance.now();
      while (performance.now() - t < 120);
    }));
    await expect.poll(async () => (await read()).longTasks.some((d) => d >= 100)).toBe(true);
    await long.evaluate(() => {
      (window as unknown as { longTasks: number[] }).longTasks.length = 0;
    });

    // Type a number a key at a time: every key cancels the decoding in the worker and starts another.
    await long.fill('#source', '');
    await long.focus('#source');
    await long.keyboard.type('123456', { delay: 120 });
    await ended('123456');
    const status = /(\d+) steps in ([\d.]+) ms/.exec((await long.textContent('#status'))!)!;
    const { longTasks, keyDelays, lengths } = await read();
    expect(Number(status[1])).toBe(1024); // it ran to max_len...
    expect(Number(status[2])).toBeGreaterThan(500); // ...and it was long
    expect(await long.textContent('#output')).toHaveLength(1024);
    expect(longTasks).toEqual([]); // no main-thread task over 50 ms while it decoded
    expect(keyDelays.length).toBeGreaterThanOrEqual(6);
    expect(Math.max(...keyDelays)).toBeLessThan(50);
    // The output grew while it decoded: many frames painted a partial translation.
    expect(new Set(lengths.filter((n) => n > 0 && n < 1024)).size).toBeGreaterThan(10);
  });
});
