// The team's shared Marian folder (test/fixtures/shared/marian-tiny, made by transformers 5.18): a
// sanity check beside our own fixtures.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../dist/index.js';
import { BUILD, expectClose } from '../helpers.js';

const DIR = fileURLToPath(new URL('../fixtures/shared/marian-tiny/', import.meta.url));

interface Example {
  src_text: string;
  src_ids: number[];
  decoder_input_ids: number[];
  logits: number[][] | null;
  max_new_tokens: number;
  greedy: { ids: number[] }[];
}

describe('shared/fixtures/marian-tiny (transformers 5.18)', () => {
  let model: Model;
  let examples: Example[];
  beforeAll(async () => {
    model = await loadModel(DIR, { build: BUILD });
    examples = (JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as { examples: Example[] }).examples;
  });

  it('gives its teacher-forced logits', () => {
    const withLogits = examples.filter((e) => e.logits !== null);
    expect(withLogits.length).toBeGreaterThan(0);
    for (const e of withLogits) expectClose(model.forward(e.src_ids, e.decoder_input_ids), e.logits!.flat(), 1e-4, 1e-4);
  });

  it('decodes greedily as generate(num_beams=1) does', async () => {
    for (const e of examples) {
      const want = e.greedy[0].ids;
      const ids = want.at(-1) === model.config.eosId ? want.slice(0, -1) : want; // ours leaves out the final eos
      expect(await model.generate(e.src_ids, { numBeams: 1, maxNewTokens: e.max_new_tokens }), e.src_text).toEqual(ids);
    }
  });
});
