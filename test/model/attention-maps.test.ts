import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AttentionMaps, loadModel } from '../../dist/index.js';
import { BUILD, expectClose } from '../helpers.js';
import { FIXTURES } from './fixtures.js';

/** tools/make_attention_fixture.py: PyTorch's weights per layer and head (need_weights, not averaged). */
interface AttentionFixture {
  src: number[];
  tgt: number[]; // [bos] + the greedy ids
  self: number[][][]; // [layer][head] -> [steps * steps]
  cross: number[][][]; // [layer][head] -> [steps * srcLen]
}

describe('attention maps', () => {
  it('records every decoder layer and head per step, masked where they must be, without changing the ids', async () => {
    const model = await loadModel(`${FIXTURES}source_padding`, { build: BUILD });
    const { padId, numDecoderLayers, decoderHeads: nhead } = model.config;
    const src = [5, padId, 7, 8, padId, padId];
    const plain = await model.generate(src, { maxNewTokens: 6 });
    const maps = new AttentionMaps();
    const seen: number[] = [];
    const ids = await model.generate(src, { maxNewTokens: 6, attention: maps, onToken: () => seen.push(maps.steps) });
    expect(ids).toEqual(plain);
    expect(seen).toEqual(ids.map((_, i) => i + 1)); // rows are there when onToken runs
    const steps = maps.steps; // the final eos step is recorded too
    expect(steps).toBeGreaterThanOrEqual(ids.length);
    expect(maps.srcLen).toBe(src.length);
    for (let layer = 0; layer < numDecoderLayers; layer++) {
      for (let head = 0; head < nhead; head++) {
        const cross = maps.cross(layer, head);
        const self = maps.self(layer, head);
        expect(cross.length).toBe(steps * src.length);
        expect(self.length).toBe(steps * steps);
        for (let t = 0; t < steps; t++) {
          const row = cross.subarray(t * src.length, (t + 1) * src.length);
          expect(sum(row)).toBeCloseTo(1, 5);
          src.forEach((id, j) => {
            if (id === padId) expect(row[j]).toBe(0);
            else expect(row[j]).toBeGreaterThan(0);
          });
          const selfRow = self.subarray(t * steps, (t + 1) * steps);
          expect(sum(selfRow)).toBeCloseTo(1, 5);
          for (let j = t + 1; j < steps; j++) expect(selfRow[j]).toBe(0);
        }
      }
    }
    // Different heads attend differently: the maps are not copies of one another.
    expect(Array.from(maps.cross(0, 0))).not.toEqual(Array.from(maps.cross(0, 1)));
  });
});

describe('attention maps against PyTorch', () => {
  it("equal nn.MultiheadAttention's own weights, layer by layer and head by head", async () => {
    const fixture = JSON.parse(readFileSync(`${FIXTURES}source_padding/attention.json`, 'utf8')) as AttentionFixture;
    const model = await loadModel(`${FIXTURES}source_padding`, { build: BUILD });
    const maps = new AttentionMaps();
    const ids = await model.generate(fixture.src, { attention: maps });
    expect(ids).toEqual(fixture.tgt.slice(1));
    expect(maps.steps).toBe(fixture.tgt.length); // every step, the one that chose eos included
    fixture.cross.forEach((heads, layer) => heads.forEach((want, head) => {
      expectClose(maps.cross(layer, head), want, 1e-5);
      expectClose(maps.self(layer, head), fixture.self[layer][head], 1e-5);
    }));
  });
});

function sum(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s;
}
