// generate() against transformers' own (tools/make_generation_fixtures.py: random Marian folders,
// and the trained English -> German demo, on sources whose decodings float rounding cannot flip):
// greedy, beam search in every setting the fixtures hold, batches equal to single runs, sampling's
// warped distribution and draws, and for the demo the German text of its greedy and beam-4 outputs.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, loadTranslator, type GenerateOptions, type Hypothesis, type Model } from '../../dist/index.js';
import { warpScores } from '../../dist/generate/processors.js';
import type { Settings } from '../../dist/generate/index.js';
import { BUILD } from '../helpers.js';

interface Output {
  ids: number[];
  eos: boolean;
  length: number;
  score: number | null;
}

interface SamplingSetting {
  name: string;
  kwargs: Record<string, unknown>;
  effective: { temperature: number; top_k: number; top_p: number };
  scores: (number | null)[];
  allowed: number[];
}

interface GenerationExpected {
  case: string;
  /** Folder cases: the recorded folder, from the repository's root (the case's directory holds only expected.json). */
  model?: string;
  sources: number[][];
  settings: { name: string; kwargs: Record<string, unknown>; examples: { source: number; outputs: Output[]; ties: number[][] }[] }[];
  batches: { name: string; kwargs: Record<string, unknown>; sources: number[]; outputs: Output[][] }[];
  sampling: { draws: number; sources: { source: number; logits: (number | null)[]; settings: SamplingSetting[] }[] };
  /** Folder cases: the English of each source, and the German transformers decodes from each setting's outputs. */
  texts?: { sources: string[]; settings: { name: string; examples: { source: number; outputs: string[] }[] }[] };
}

const DIR = fileURLToPath(new URL('../fixtures/generation/', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CASES = readdirSync(DIR).map((name) => {
  const expected = JSON.parse(readFileSync(`${DIR}${name}/expected.json`, 'utf8')) as GenerationExpected;
  return { dir: expected.model === undefined ? DIR + name : ROOT + expected.model, expected };
});
const TEXT_CASES = CASES.filter((c) => c.expected.texts !== undefined);

/** generate()'s keyword arguments as wasmformer's options (the output flags dropped). */
function optionsOf(kwargs: Record<string, unknown>): GenerateOptions {
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(kwargs)) {
    if (key === 'return_dict_in_generate' || key === 'output_scores') continue;
    options[key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = value;
  }
  return options as GenerateOptions;
}

/** The hypotheses equal transformers' in order, except within a tie group (scores within 1e-5), compared as a set; scores within 1e-4. */
function expectHypotheses(got: Hypothesis[], want: Output[], ties: number[][], what: string): void {
  expect(got.length, what).toBe(want.length);
  const key = (h: { ids: number[] }): string => h.ids.join(',');
  const group = (i: number): number[] => ties.find((g) => g.includes(i)) ?? [i];
  want.forEach((w, i) => {
    const members = group(i);
    expect(members.map((j) => key(want[j])), `${what}: hypothesis ${i}`).toContain(key(got[i]));
    const match = members.map((j) => want[j]).find((m) => key(m) === key(got[i]))!;
    if (match.score !== null) expect(Math.abs(got[i].score - match.score), `${what}: score of hypothesis ${i}`).toBeLessThanOrEqual(1e-4);
  });
  expect(new Set(got.map(key)).size, `${what}: distinct hypotheses`).toBe(got.length);
}

describe.each(CASES)('generate() as transformers: $expected.case', ({ dir, expected }) => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(dir, { build: BUILD });
  });

  describe.each(expected.settings)('$name', (setting) => {
    it('returns transformers\' hypotheses and sequences_scores', async () => {
      const options = optionsOf(setting.kwargs);
      for (const example of setting.examples) {
        const got = await model.search(expected.sources[example.source], options);
        expectHypotheses(got, example.outputs, example.ties, `source ${example.source}`);
        expect(await model.generate(expected.sources[example.source], options)).toEqual(got[0].ids);
      }
    });
  });

  it.each(expected.batches)('$name: a batch of mixed lengths gives each source its own ids', async (batch) => {
    const options = optionsOf(batch.kwargs);
    const got = await model.generateBatch(batch.sources.map((i) => expected.sources[i]), options);
    expect(got).toEqual(batch.outputs.map((outputs) => outputs[0].ids));
  });

  describe.each(expected.sampling.sources)('sampling the first token of source $source', ({ source, logits, settings }) => {
    const finite = (xs: (number | null)[]): Float32Array => Float32Array.from(xs, (x) => x ?? -Infinity);

    it.each(settings)('$name: warps the logits to transformers\' scores (temperature, top-k, top-p)', ({ effective, scores, allowed }) => {
      const got = finite(logits);
      warpScores(got, { temperature: effective.temperature, topK: effective.top_k, topP: effective.top_p } as Settings, 1);
      expect([...got.keys()].filter((id) => got[id] > -Infinity)).toEqual(allowed);
      for (const id of allowed) expect(Math.abs(got[id] - scores[id]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(scores[id]!)));
    });

    it.each(settings)('$name: draws within the top-k / top-p set, as often as its softmax says', async ({ kwargs, scores, allowed }) => {
      const options = { ...optionsOf(kwargs), maxNewTokens: 2, numReturnSequences: 250 }; // 2: a forced eos would take the only step
      const counts = new Map<number, number>();
      let draws = 0;
      for (let seed = 1; seed <= 8; seed++) {
        for (const { ids } of await model.search(expected.sources[source], { ...options, seed })) {
          const first = ids[0] ?? model.config.eosId;
          counts.set(first, (counts.get(first) ?? 0) + 1);
          draws++;
        }
      }
      for (const id of counts.keys()) expect(allowed, `drew ${id}`).toContain(id);
      const weights = finite(scores).map((x) => Math.exp(x));
      const total = weights.reduce((a, w) => a + w, 0);
      for (const id of allowed) {
        const p = weights[id] / total;
        const sigma = Math.sqrt(draws * p * (1 - p));
        expect(Math.abs((counts.get(id) ?? 0) - draws * p), `token ${id} (p = ${p.toFixed(4)})`).toBeLessThanOrEqual(5 * sigma + 1);
      }
    });
  });

  it('samples the same ids from the same seed, and other ids from other seeds', async () => {
    const src = expected.sources[0];
    const options = { doSample: true, numBeams: 1, topK: 0, temperature: 1.5 };
    const runs = await Promise.all([1, 1, 2, 3, 4].map((seed) => model.generate(src, { ...options, seed })));
    expect(runs[1]).toEqual(runs[0]);
    expect(new Set(runs.map((ids) => ids.join(','))).size).toBeGreaterThan(2);
    const beams = { ...options, numBeams: 3, seed: 9 }; // beam sampling: drawn candidates, seeded too
    expect(await model.search(src, beams)).toEqual(await model.search(src, beams));
  });
});

describe.each(TEXT_CASES)('translate() as transformers: $expected.case', ({ dir, expected }) => {
  const texts = expected.texts!;
  it.each(texts.settings)('$name: the German of transformers\' outputs', async ({ name, examples }) => {
    const translator = await loadTranslator(dir, { build: BUILD });
    const setting = expected.settings.find((s) => s.name === name)!;
    const options = optionsOf(setting.kwargs);
    const got = await translator.translate(examples.map((e) => texts.sources[e.source]), options);
    expect(got).toEqual(examples.map((e) => e.outputs[0]));
    translator.dispose();
  });
});
