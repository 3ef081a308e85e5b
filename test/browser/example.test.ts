// The browser example, end to end: examples/serve.js serves the repository (the built dist/ and
// the demo model), Debian's Chromium opens examples/browser/ and a person's typing is simulated.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../examples/serve.js';
import { launchChromium } from './chromium.js';

interface Sample {
  text: string;
  expected: string;
  greedy_text: string;
}

const ROOT = new URL('../../', import.meta.url);
const SCREENSHOTS = new URL('test/screenshots/', ROOT);
const samples = JSON.parse(readFileSync(new URL('models/numbers/samples.json', ROOT), 'utf8')).items as Sample[];
// A short, a middle and a long input of the demo's hand-picked samples (4019 is the README's).
const CASES = ['4019', '12,345', '999999'].map((text) => samples.find((s) => s.text === text)!);

let server: { url: string; close: () => Promise<void> };
let browser: Browser;
let page: Page;
const problems: string[] = []; // page errors and console errors, which no test expects

beforeAll(async () => {
  server = await startServer({ port: 0 });
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
  it('has test cases the model translates right', () => {
    // PyTorch's greedy decoding gives the right words: the page must show exactly those.
    for (const c of CASES) expect(c.greedy_text).toBe(c.expected);
  });

  it('loads the model and says which kernels run', async () => {
    await page.waitForSelector('#output[data-source]'); // the page translates its initial text
    expect(await page.textContent('#status')).toMatch(/M parameters, loaded in \d+ ms, (relaxed SIMD|SIMD128) kernels/);
  });

  it.each(CASES)('translates "$text" as $expected, one token at a time', async ({ text, expected }) => {
    await record();
    await type(text);
    expect(await page.textContent('#output')).toBe(expected);
    expect(await page.textContent('#error')).toBe('');
    expect(await page.textContent('#status')).toMatch(/\d+ steps in [\d.]+ ms: \d+ tokens\/s/);
    const { texts, frames } = await recording();
    // Character tokens: the output grew by one character at a time, from the first to the last...
    expect(texts.filter((t) => t !== '')).toEqual([...expected].map((_, i) => expected.slice(0, i + 1)));
    // ...and the browser painted between tokens, not just the final text.
    const painted = new Set(frames.filter((t) => t !== '' && t !== expected));
    expect(painted.size).toBeGreaterThan(expected.length / 2);
    await page.screenshot({ path: new URL(`${text.replace(/\W/g, '_')}.png`, SCREENSHOTS).pathname, fullPage: true });
  });

  it('draws the cross-attention of the chosen layer and head', async () => {
    await type(CASES[0].text);
    const drawn: string[] = [];
    for (const [layer, head] of [['0', '0'], ['0', '1'], ['1', '0']]) {
      await page.selectOption('#layer', layer);
      await page.selectOption('#head', head);
      const { url, colours } = await heatmap();
      expect(colours, `layer ${layer} head ${head}`).toBeGreaterThan(20); // weights in many shades, and labels
      drawn.push(url);
    }
    expect(new Set(drawn).size).toBe(3);
    // The demo model's layer 1, head 1 reads the digits in order ("four" at 4, "nine" at 9,
    // "teen" at 1): the clearest picture for the README.
    await page.selectOption('#layer', '1');
    await page.selectOption('#head', '1');
    await page.screenshot({ path: new URL('example.png', SCREENSHOTS).pathname, fullPage: true });
    // UPDATE_SCREENSHOT=1 refreshes the README's picture from this one.
    if (process.env.UPDATE_SCREENSHOT) copyFileSync(new URL('example.png', SCREENSHOTS), new URL('docs/browser.png', ROOT));
  });

  it('shows a character outside the vocabulary as an error in the page, then recovers', async () => {
    await type('12a');
    expect(await page.textContent('#error')).toContain('"a" (U+0061) at position 2 is not in the source vocabulary');
    expect(await page.textContent('#output')).toBe('');
    expect((await heatmap()).colours).toBe(0);
    await type(CASES[1].text);
    expect(await page.textContent('#error')).toBe('');
    expect(await page.textContent('#output')).toBe(CASES[1].expected);
  });

  it('restarts cleanly when the text changes while decoding', async () => {
    await record();
    await page.fill('#source', CASES[2].text);
    await page.waitForFunction(() => (document.querySelector('#output')!.textContent ?? '').length >= 3);
    await type(CASES[0].text);
    expect(await page.textContent('#output')).toBe(CASES[0].expected);
    const { texts, ended } = await recording();
    // The first decoding stopped part-way and never counted as ended; only the second did.
    expect(texts).not.toContain(CASES[2].expected);
    expect(ended).toEqual([CASES[0].text]);
  });
});
