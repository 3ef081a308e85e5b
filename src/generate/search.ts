// The contract between a search (greedy, sampling, beam) and the model that steps it: the search
// owns its hypotheses and their DecoderRows; each step it says which rows to feed which token,
// then reads their logits and extends, forks or finishes its hypotheses.
import type { DecoderRow } from '../model/decoder-state.js';

/** One step's scores of the rows a search gave, in its order: views of the model's memory, valid until its next step. */
export interface StepLogits {
  /** Row i's scores [tgt_vocab], to read and change in place. */
  row(i: number): Float32Array;
  /** Rows 0 .. count-1 in place to log-probabilities (log_softmax). */
  logSoftmax(count: number): void;
  /** The id of row i's largest score (the lowest id on a tie). */
  argmax(i: number): number;
}

/** A hypothesis found: its ids (without the start token and the final eos) and its score. */
export interface Hypothesis {
  readonly ids: number[];
  /** Its summed log-probabilities over (its length, eos included) ** lengthPenalty: transformers' sequences_scores. */
  readonly score: number;
}

/** The rows to feed at a step, and the token each is fed. */
export interface Feed {
  readonly rows: DecoderRow[];
  readonly tokens: number[];
}

export interface Search {
  /** What to feed at the next step: no rows once the search is over. */
  next(): Feed;
  /** The logits of the rows next() gave: the search picks its tokens. */
  update(logits: StepLogits): void;
  /** The hypothesis that leads so far, ids without the start token (what onToken reports). */
  leader(): readonly number[];
  /** The hypotheses found, best first: numReturnSequences of them. */
  results(): Hypothesis[];
}

/** One hypothesis being extended: its decoder input (the start token, then its tokens) and its row. */
export interface Running {
  readonly input: number[];
  readonly row: DecoderRow;
}

/** The score transformers gives a finished hypothesis: summed log-probabilities / length ** penalty, in float32. */
export function lengthNormalized(logProb: number, length: number, lengthPenalty: number): number {
  return Math.fround(logProb / Math.fround(length ** lengthPenalty));
}

/**
 * The distinct rows of some hypotheses (several share one until their first step: the start
 * token's), the token each is fed (its input's last), and for each hypothesis the index of its row.
 */
export function feedOf(hypotheses: readonly Running[]): Feed & { at: number[] } {
  const rows: DecoderRow[] = [];
  const tokens: number[] = [];
  const at = hypotheses.map((h) => {
    let i = rows.indexOf(h.row);
    if (i < 0) {
      i = rows.push(h.row) - 1;
      tokens.push(h.input[h.input.length - 1]);
    }
    return i;
  });
  return { rows, tokens, at };
}
