import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../dist/index.js';
import { BUILD, expectClose } from '../helpers.js';
import { fixtures } from './fixtures.js';

// The model against torch.nn.Transformer: logits within 1e-4 * max(1, |ref|), greedy ids exact.
describe.each(fixtures())('PyTorch parity: $expected.case', ({ dir, expected }) => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(dir, { build: BUILD });
  });

  it('teacher-forced logits match PyTorch', () => {
    for (const { src, tgt, logits } of expected.forward) {
      const got = model.forward(src, tgt);
      expect(got.length).toBe(tgt.length * model.config.tgtVocabSize);
      expectClose(got, logits, 1e-4, 1e-4);
    }
  });

  it('greedy ids equal PyTorch', async () => {
    for (const { src, max_new_tokens, ids } of expected.greedy) {
      expect(await model.generate(src, { maxNewTokens: max_new_tokens })).toEqual(ids);
    }
  });

  it('greedy decoding with the KV cache equals an argmax loop over full forward passes', async () => {
    const { decoderStartId: bosId, eosId, tgtVocabSize } = model.config;
    for (const { src, max_new_tokens } of expected.greedy) {
      const tgt = [bosId];
      while (tgt.length <= max_new_tokens) {
        const logits = model.forward(src, tgt).subarray((tgt.length - 1) * tgtVocabSize);
        const next = argmax(logits);
        if (next === eosId) break;
        tgt.push(next);
      }
      expect(await model.generate(src, { maxNewTokens: max_new_tokens })).toEqual(tgt.slice(1));
    }
  });

  it('streams the same ids it generates, calling onToken for each', async () => {
    const { src, max_new_tokens, ids } = expected.greedy[0];
    const seen: number[] = [];
    const streamed: number[] = [];
    for await (const id of model.stream(src, { maxNewTokens: max_new_tokens, onToken: (t) => seen.push(t) })) streamed.push(id);
    expect(streamed).toEqual(ids);
    expect(seen).toEqual(ids);
  });
});

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
