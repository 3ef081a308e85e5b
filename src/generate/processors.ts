// What generate() does to a step's logits before it picks a token, as transformers' logits
// processors do it: small functions over one row of logits, in the order transformers applies them.
import type { GenerationDefaults } from '../families/index.js';

/** The bad-word rules of a decoding, prepared once: single tokens always banned, longer sequences by their prefix. */
export interface BadWords {
  readonly always: readonly number[];
  readonly sequences: readonly (readonly number[])[];
}

/** bad_words_ids as NoBadWordsLogitsProcessor reads them: a single-token sequence of eos is dropped. */
export function badWords(generation: GenerationDefaults, eosId: number): BadWords {
  const kept = generation.badWordsIds.filter((ids) => !(ids.length === 1 && ids[0] === eosId));
  return { always: kept.filter((ids) => ids.length === 1).map((ids) => ids[0]), sequences: kept.filter((ids) => ids.length > 1) };
}

/**
 * Sets to -Infinity the logits of every banned token: the single ones, and the last token of
 * each longer sequence whose other tokens end the decoder input so far (`start`, then `tokens`).
 */
export function banBadWords(logits: Float32Array, bad: BadWords, start: number, tokens: readonly number[]): void {
  for (const id of bad.always) logits[id] = -Infinity;
  for (const seq of bad.sequences) {
    const prefix = seq.length - 1;
    const have = tokens.length + 1;
    if (prefix > have) continue;
    let match = true;
    for (let j = 0; j < prefix && match; j++) {
      const at = have - prefix + j; // position in [start, ...tokens]
      match = (at === 0 ? start : tokens[at - 1]) === seq[j];
    }
    if (match) logits[seq[prefix]] = -Infinity;
  }
}

/**
 * The step limit of a decoding (the step producing eos included) when the caller gives none:
 * the generation config's max_length less the start token, within the model's positions.
 */
export function defaultLimit(generation: GenerationDefaults, maxLen: number): number {
  return generation.maxLength === null ? maxLen : Math.max(0, Math.min(generation.maxLength - 1, maxLen));
}
