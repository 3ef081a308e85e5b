// What generate() does to a step's scores before it picks a token, as transformers' logits
// processors and warpers do it: small functions over one row of scores (the logits when decoding
// greedily or sampling, the log-probabilities in beam search), applied in transformers' order.
// `input` is a hypothesis' decoder input so far: the start token, then the tokens it generated.
import type { Settings } from './options.js';

/** The bad-word rules of a decoding, prepared once: single tokens always banned, longer sequences by their prefix. */
export interface BadWords {
  readonly always: readonly number[];
  readonly sequences: readonly (readonly number[])[];
}

/** bad_words_ids as NoBadWordsLogitsProcessor reads them: a single-token sequence of eos is dropped. */
export function badWords(ids: readonly (readonly number[])[], eosId: number): BadWords {
  const kept = ids.filter((seq) => !(seq.length === 1 && seq[0] === eosId));
  return { always: kept.filter((seq) => seq.length === 1).map((seq) => seq[0]), sequences: kept.filter((seq) => seq.length > 1) };
}

/**
 * generate()'s rules on the scores of the step after `input`: repetition penalty, no repeated
 * n-gram, bad words, the minimum length (eos banned), the forced eos at the length limit.
 */
export function processScores(scores: Float32Array, input: readonly number[], s: Settings, eosId: number): void {
  const step = input.length - 1;
  if (s.repetitionPenalty !== 1) penalizeRepetition(scores, input, s.repetitionPenalty);
  if (s.noRepeatNgramSize > 0) banRepeatedNgrams(scores, input, s.noRepeatNgramSize);
  banBadWords(scores, input, s.bad);
  if (step < s.minSteps) scores[eosId] = -Infinity;
  if (s.forcedEos !== null && step === s.limit - 1) {
    scores.fill(-Infinity);
    scores[s.forcedEos] = 0;
  }
}

/** Every token of input: its score divided by the penalty when positive, multiplied when negative. */
function penalizeRepetition(scores: Float32Array, input: readonly number[], penalty: number): void {
  const p = Math.fround(penalty);
  for (const id of new Set(input)) {
    if (id < scores.length) scores[id] = scores[id] < 0 ? scores[id] * p : scores[id] / p;
  }
}

/** Bans each token that would complete an n-gram the input already holds. */
function banRepeatedNgrams(scores: Float32Array, input: readonly number[], n: number): void {
  const len = input.length;
  if (len < n) return;
  const prefix = len - n + 1; // the last n - 1 tokens start here
  for (let i = 0; i + n <= len; i++) {
    let j = 0;
    while (j < n - 1 && input[i + j] === input[prefix + j]) j++;
    if (j === n - 1) scores[input[i + n - 1]] = -Infinity;
  }
}

/** Bans the single bad words, and the last token of each longer one whose other tokens end the input. */
function banBadWords(scores: Float32Array, input: readonly number[], bad: BadWords): void {
  for (const id of bad.always) scores[id] = -Infinity;
  for (const seq of bad.sequences) {
    const prefix = seq.length - 1;
    if (prefix > input.length) continue;
    const at = input.length - prefix;
    let j = 0;
    while (j < prefix && input[at + j] === seq[j]) j++;
    if (j === prefix) scores[seq[prefix]] = -Infinity;
  }
}

/**
 * The sampling warpers on one row of scores, in transformers' order: temperature, top-k, top-p
 * (each keeping at least minKeep tokens). Tokens left out get -Infinity.
 */
export function warpScores(scores: Float32Array, s: Settings, minKeep: number): void {
  if (s.temperature !== 1) {
    const t = Math.fround(s.temperature);
    for (let v = 0; v < scores.length; v++) scores[v] /= t;
  }
  if (s.topK !== 0) keepAtLeast(scores, kthLargest(scores, Math.min(Math.max(s.topK, minKeep), scores.length)));
  if (s.topP < 1) keepAtLeast(scores, nucleusFloor(scores, s.topP, minKeep));
}

/** Scores below `floor` become -Infinity (ties with it stay). */
function keepAtLeast(scores: Float32Array, floor: number): void {
  for (let v = 0; v < scores.length; v++) if (scores[v] < floor) scores[v] = -Infinity;
}

/** The k-th largest score (1 <= k <= length), through a min-heap of the k largest so far. */
export function kthLargest(scores: Float32Array, k: number): number {
  const heap = new Float32Array(k).fill(-Infinity);
  for (let v = 0; v < scores.length; v++) {
    const x = scores[v];
    if (x <= heap[0]) continue;
    let i = 0; // sift x down from the root, replacing the smallest
    for (;;) {
      const l = 2 * i + 1;
      if (l >= k) break;
      const c = l + 1 < k && heap[l + 1] < heap[l] ? l + 1 : l;
      if (heap[c] >= x) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = x;
  }
  return heap[0];
}

/**
 * TopPLogitsWarper's cut: in ascending order of score, the tokens whose cumulative probability
 * stays at or below 1 - p go, but the minKeep largest stay. Returns the smallest score kept.
 */
function nucleusFloor(scores: Float32Array, p: number, minKeep: number): number {
  const sorted = scores.slice().sort(); // ascending
  const top = sorted[sorted.length - 1];
  let total = 0;
  for (const x of sorted) total += Math.exp(x - top);
  const drop = (1 - p) * total;
  let cumulative = 0;
  let i = 0;
  for (; i < sorted.length - minKeep; i++) {
    cumulative += Math.exp(sorted[i] - top);
    if (cumulative > drop) break;
  }
  return sorted[i];
}
