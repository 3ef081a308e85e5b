// Sampling, as transformers' _sample with do_sample: each hypothesis draws its token from the
// softmax of its processed and warped logits. The draws come from a seeded generator, so the same
// seed gives the same output (transformers' own random stream is torch's, which no one can match).
import { warpScores } from './processors.js';
import { GreedySearch } from './greedy.js';
import type { StepLogits } from './search.js';

/** A seeded generator of uniform floats in [0, 1): SplitMix32's output function over a Weyl sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return ((z ^ (z >>> 15)) >>> 0) / 2 ** 32;
  };
}

/**
 * Draws `k` distinct indices from the softmax of `scores` without replacement (torch.multinomial's
 * replacement=False), in the order drawn. Indices of -Infinity scores come last, when nothing else is left.
 */
export function drawWithoutReplacement(scores: Float32Array, k: number, random: () => number): number[] {
  let top = -Infinity;
  for (const x of scores) top = Math.max(top, x);
  const weights = Float64Array.from(scores, (x) => Math.exp(x - top));
  const drawn: number[] = [];
  let left = weights.reduce((n, w) => n + (w > 0 ? 1 : 0), 0); // indices that can still be drawn
  let total = weights.reduce((a, w) => a + w, 0);
  while (drawn.length < k && left > 0) {
    let r = random() * total;
    let i = 0;
    while (i < weights.length - 1 && (weights[i] === 0 || r >= weights[i])) r -= weights[i++];
    while (weights[i] === 0) i--; // rounding ran past the last positive weight
    drawn.push(i);
    total -= weights[i];
    weights[i] = 0;
    left--;
    if (drawn.length % 64 === 0) total = weights.reduce((a, w) => a + w, 0); // no drift from the subtractions
  }
  for (let i = 0; drawn.length < k && i < weights.length; i++) if (!drawn.includes(i)) drawn.push(i);
  return drawn;
}

/**
 * One index drawn from the softmax of `scores`: drawWithoutReplacement(scores, 1, random)[0], the
 * same draw, without copying the row (each sampled hypothesis takes one per step).
 */
export function drawOne(scores: Float32Array, random: () => number): number {
  let top = -Infinity;
  for (const x of scores) top = Math.max(top, x);
  let total = 0;
  for (const x of scores) total += Math.exp(x - top);
  if (!(total > 0)) return 0; // nothing can be drawn, as drawWithoutReplacement falls back
  let r = random() * total;
  let last = 0;
  for (let i = 0; i < scores.length; i++) {
    const w = Math.exp(scores[i] - top);
    if (w === 0) continue;
    if (r < w || i === scores.length - 1) return i;
    r -= w;
    last = i;
  }
  return last; // rounding ran past the last positive weight
}

/** `count` samples of one source, each drawing its tokens with its own share of one seeded generator. */
export class SampleSearch extends GreedySearch {
  private readonly random = seededRandom(this.settings.seed);

  protected override prepare(scores: Float32Array, input: readonly number[]): void {
    super.prepare(scores, input);
    warpScores(scores, this.settings, 1);
  }

  protected override choose(logits: StepLogits, row: number): number {
    return drawOne(logits.row(row), this.random);
  }
}
