// generate()'s logits processors, warpers and draws against naive references, at odd sizes
// (the model-level tests hold them to transformers' own outputs).
import { describe, expect, it } from 'vitest';
import { badWords, kthLargest, processScores, warpScores } from '../../dist/generate/processors.js';
import { drawOne, drawWithoutReplacement, seededRandom } from '../../dist/generate/sample.js';
import type { Settings } from '../../dist/generate/index.js';
import { ODD_SIZES, random } from '../helpers.js';

const EOS = 0;

/** Settings that change nothing, with some fields set. */
function settingsWith(s: Partial<Settings>): Settings {
  return {
    limit: 100, minSteps: 0, numBeams: 1, lengthPenalty: 1, earlyStopping: false, numReturnSequences: 1,
    bad: badWords([], EOS), forcedEos: null, noRepeatNgramSize: 0, repetitionPenalty: 1, doSample: false,
    temperature: 1, topK: 0, topP: 1, seed: 0, ...s,
  };
}

function randomScores(n: number, seed: number): Float32Array {
  const r = random(seed);
  return Float32Array.from({ length: n }, () => (r.chance(0.1) ? -Infinity : r.int(2000) / 100 - 10));
}

describe('processScores', () => {
  it('bans exactly the tokens that would repeat an n-gram of the input, as a naive scan finds them', () => {
    const r = random(3);
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + r.int(4);
      const input = Array.from({ length: 1 + r.int(12) }, () => r.int(5));
      const scores = new Float32Array(5);
      processScores(scores, input, settingsWith({ noRepeatNgramSize: n }), EOS);
      const banned = new Set<number>();
      const tail = input.slice(input.length - n + 1);
      for (let i = 0; i + n <= input.length && input.length >= n; i++) {
        if (input.slice(i, i + n - 1).every((id, j) => id === tail[j])) banned.add(input[i + n - 1]);
      }
      for (let id = 0; id < 5; id++) expect(scores[id] === -Infinity, `${n}-grams of ${input}: token ${id}`).toBe(banned.has(id));
    }
  });

  it('penalizes every token of the input once: positive scores divided, negative multiplied', () => {
    const scores = Float32Array.from([2, -2, 3, -3, 0.5]);
    processScores(scores, [4, 1, 1, 2, 4], settingsWith({ repetitionPenalty: 2 }), EOS);
    expect(Array.from(scores)).toEqual([2, -4, 1.5, -3, 0.25]);
  });

  it('bans single bad words always, longer ones after their prefix, and never eos alone', () => {
    const bad = badWords([[EOS], [3], [1, 2], [1, 1, 4]], EOS);
    const at = (input: number[]): number[] => {
      const scores = new Float32Array(5);
      processScores(scores, input, settingsWith({ bad }), EOS);
      return [...scores.keys()].filter((id) => scores[id] === -Infinity);
    };
    expect(at([9])).toEqual([3]);
    expect(at([9, 1])).toEqual([2, 3]);
    expect(at([1, 1])).toEqual([2, 3, 4]);
    expect(at([1, 2])).toEqual([3]);
  });

  it('bans eos before minSteps and forces forcedEos at the last step', () => {
    const s = settingsWith({ minSteps: 2, forcedEos: 3, limit: 4 });
    const run = (steps: number): Float32Array => {
      const scores = Float32Array.from([1, 2, 3, 4, 5]);
      processScores(scores, new Array(steps + 1).fill(1), s, EOS);
      return scores;
    };
    expect(run(1)[EOS]).toBe(-Infinity);
    expect(run(2)[EOS]).toBe(1);
    expect(Array.from(run(3))).toEqual([-Infinity, -Infinity, -Infinity, 0, -Infinity]);
  });
});

describe('warpScores and kthLargest', () => {
  it('kthLargest equals the sorted array\'s k-th, ties and -Infinity included', () => {
    let seed = 10;
    for (const n of ODD_SIZES) {
      const scores = randomScores(n, seed++);
      const sorted = Array.from(scores).sort((a, b) => b - a);
      for (const k of [1, 2, Math.ceil(n / 2), n].filter((k) => k <= n)) expect(kthLargest(scores, k)).toBe(sorted[k - 1]);
    }
  });

  it('top-k keeps the k best and their ties; top-p the fewest best whose mass reaches p, at least minKeep', () => {
    let seed = 40;
    for (const n of ODD_SIZES) {
      for (const topP of [0.3, 0.9]) {
        const scores = randomScores(n, seed++);
        const kept = scores.slice();
        warpScores(kept, settingsWith({ topK: 5, topP }), 2);
        // Naively: the top-k cut, then softmax of the survivors, ascending, dropping while the cumulative mass stays <= 1 - p.
        const afterK = scores.map((x) => (x < Array.from(scores).sort((a, b) => b - a)[Math.min(Math.max(5, 2), n) - 1] ? -Infinity : x));
        const order = [...afterK.keys()].sort((a, b) => afterK[a] - afterK[b]);
        const top = Math.max(...afterK);
        const total = order.reduce((s, i) => s + Math.exp(afterK[i] - top), 0);
        let cumulative = 0;
        const dropped = new Set<number>();
        order.forEach((i, rank) => {
          cumulative += Math.exp(afterK[i] - top) / total;
          if (cumulative <= 1 - topP && rank < n - 2) dropped.add(i);
        });
        for (let i = 0; i < n; i++) {
          const want = afterK[i] === -Infinity || dropped.has(i) ? -Infinity : scores[i];
          expect(kept[i], `n ${n}, p ${topP}, token ${i}`).toBe(want);
        }
      }
    }
  });
});

describe('drawWithoutReplacement', () => {
  it('draws k distinct indices, the -Infinity ones only once the others are out', () => {
    const rand = seededRandom(7);
    for (const n of ODD_SIZES) {
      const scores = randomScores(n, n);
      const finite = [...scores.keys()].filter((i) => scores[i] > -Infinity).length;
      const drawn = drawWithoutReplacement(scores, n, rand);
      expect(new Set(drawn).size).toBe(n);
      drawn.forEach((i, rank) => expect(scores[i] > -Infinity, `rank ${rank} of ${n}`).toBe(rank < finite));
    }
  });

  it('draws one index as drawOne does, which copies nothing: the same index from the same random stream', () => {
    for (const n of ODD_SIZES) {
      const scores = randomScores(n, 3 * n);
      scores[n - 1] = -Infinity; // a last index that cannot be drawn
      const [a, b] = [seededRandom(n), seededRandom(n)];
      for (let i = 0; i < 200; i++) expect(drawOne(scores, a), `n = ${n}, draw ${i}`).toBe(drawWithoutReplacement(scores, 1, b)[0]);
    }
  });

  it('draws its first index as often as the softmax says', () => {
    const scores = Float32Array.from([0, 1, 2, -1, -Infinity, 0.5]);
    const p = Array.from(scores, (x) => Math.exp(x));
    const total = p.reduce((a, b) => a + b, 0);
    const counts = new Array(scores.length).fill(0);
    const rand = seededRandom(11);
    const draws = 20_000;
    for (let i = 0; i < draws; i++) counts[drawWithoutReplacement(scores, 1, rand)[0]]++;
    counts.forEach((c, i) => {
      const q = p[i] / total;
      expect(Math.abs(c - draws * q), `index ${i}`).toBeLessThanOrEqual(5 * Math.sqrt(draws * q * (1 - q)) + 1);
    });
  });

  it('seededRandom repeats itself for a seed and fills [0, 1)', () => {
    const a = seededRandom(5);
    const b = seededRandom(5);
    const xs = Array.from({ length: 10_000 }, () => a());
    expect(Array.from({ length: 10_000 }, () => b())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
  });
});
