// Beam search exactly as transformers' _beam_search does it (generation/utils.py), one source:
// - each step, the log-probabilities of every running beam (log_softmax, then the processors)
//   plus its score, in float32, are 2·numBeams candidates: the best (or, when sampling, drawn);
// - a candidate that ends in eos or at the length limit is finished: when it is among the first
//   numBeams it competes, score / generated length ** lengthPenalty, for the numBeams finished
//   slots; the numBeams best unfinished candidates run on;
// - the search stops when no running beam can improve the slots (earlyStopping's rule), when
//   every slot is filled and earlyStopping is true, or when every candidate finished.
// A new beam forks its parent's DecoderRow: it copies the parent's table of key offsets (a few
// ints per position), never the keys and values, which stay where the parent's steps wrote them.
import type { DecoderRow } from '../model/decoder-state.js';
import { idsOf, type Vocabulary } from './greedy.js';
import type { Settings } from './options.js';
import { processScores, warpScores } from './processors.js';
import { drawWithoutReplacement, seededRandom } from './sample.js';
import { feedOf, lengthNormalized, type Feed, type Hypothesis, type Running, type Search, type StepLogits } from './search.js';

/** transformers' stand-in for "impossible": added to scores that must lose. */
const LOSE = -1e9;

/** Relative margin of the candidate scan's quick test, far above float32 rounding (2^-24). */
const SLACK = 1e-5;

interface Beam extends Running {
  readonly score: number; // summed log-probabilities, float32
}

interface Slot {
  readonly input: number[];
  readonly score: number; // length-normalized
  readonly finished: boolean;
}

/** A candidate: beam `beam` extended by token `id`, with its accumulated score. */
interface Candidate {
  readonly beam: number;
  readonly id: number;
  readonly score: number;
}

export class BeamSearch implements Search {
  private running: Beam[];
  private slots: Slot[];
  private improvable = true; // transformers' is_early_stop_heuristic_unsatisfied
  private done: boolean;
  private fed: (Feed & { at: number[] }) | null = null;
  private readonly random: (() => number) | null;

  constructor(
    row: DecoderRow,
    private readonly settings: Settings,
    private readonly vocab: Vocabulary,
  ) {
    const { numBeams } = settings;
    const start = [vocab.decoderStartId];
    // Every beam starts as the start token; all but the first score LOSE, so the first step's candidates come from one row.
    this.running = Array.from({ length: numBeams }, (_, b) => ({ input: start, row, score: b === 0 ? 0 : LOSE }));
    this.slots = Array.from({ length: numBeams }, () => ({ input: start, score: LOSE, finished: false }));
    this.done = settings.limit === 0;
    this.random = settings.doSample ? seededRandom(settings.seed) : null;
  }

  next(): Feed {
    this.fed = this.done ? { rows: [], tokens: [], at: [] } : feedOf(this.running);
    return this.fed;
  }

  update(logits: StepLogits): void {
    const { rows, at } = this.fed!;
    const s = this.settings;
    logits.logSoftmax(rows.length);
    rows.forEach((_, i) => {
      const scores = logits.row(i);
      processScores(scores, this.running[at.indexOf(i)].input, s, this.vocab.eosId);
      if (this.random !== null) warpScores(scores, s, 2);
    });
    const candidates = this.candidates(logits, at);
    const length = this.running[0].input.length; // generated tokens after this step, the start token counted out
    const hits = candidates.map((c) => c.id === this.vocab.eosId || length >= s.limit);
    this.finish(candidates, hits, length);
    this.runOn(candidates, hits);
    this.checkImprovable(length);
    const allFinished = this.slots.every((slot) => slot.finished);
    this.done = !this.improvable || (allFinished && s.earlyStopping === true) || hits.every(Boolean);
  }

  leader(): readonly number[] {
    return idsOf(this.done ? this.slots[0].input : this.running[0].input, this.vocab.eosId);
  }

  results(): Hypothesis[] {
    return this.slots
      .slice(0, this.settings.numReturnSequences)
      .filter((slot) => slot.finished)
      .map((slot) => ({ ids: idsOf(slot.input, this.vocab.eosId), score: slot.score }));
  }

  /** The 2·numBeams continuations of the running beams: the best by accumulated score (or drawn from their softmax), in order. */
  private candidates(logits: StepLogits, at: readonly number[]): Candidate[] {
    const k = 2 * this.settings.numBeams;
    if (this.random !== null) return this.drawn(logits, at, k);
    const best: Candidate[] = []; // sorted, best first; ties keep the lower flat index first, as torch.topk does
    this.running.forEach((beam, b) => {
      // Log-probabilities are <= 0: nothing of a beam at or below the k-th candidate can enter.
      if (best.length < k || beam.score > best[k - 1].score) bestOfRow(logits.row(at[b]), b, beam.score, best, k);
    });
    return best;
  }

  /** Beam sampling: k candidates drawn without replacement from the softmax over every beam's accumulated scores. */
  private drawn(logits: StepLogits, at: readonly number[], k: number): Candidate[] {
    const vocab = logits.row(0).length;
    const all = new Float32Array(this.running.length * vocab);
    this.running.forEach((beam, b) => {
      const scores = logits.row(at[b]);
      for (let id = 0; id < vocab; id++) all[b * vocab + id] = beam.score + scores[id];
    });
    return drawWithoutReplacement(all, k, this.random!).map((flat) => ({ beam: Math.floor(flat / vocab), id: flat % vocab, score: all[flat] }));
  }

  /** The finished candidates among the first numBeams compete for the slots, length-normalized. */
  private finish(candidates: readonly Candidate[], hits: readonly boolean[], length: number): void {
    const s = this.settings;
    const full = this.slots.every((slot) => slot.finished) && s.earlyStopping === true;
    const entries: Slot[] = [...this.slots];
    candidates.forEach((c, i) => {
      const eligible = hits[i] && i < s.numBeams;
      let score = lengthNormalized(c.score, length, s.lengthPenalty);
      if (full) score = Math.fround(score + LOSE);
      if (!this.improvable) score = Math.fround(score + LOSE);
      if (!eligible) score = Math.fround(score + LOSE);
      entries.push({ input: [...this.running[c.beam].input, c.id], score, finished: eligible });
    });
    this.slots = best(entries, s.numBeams);
  }

  /** The numBeams best candidates that did not finish run on, each on a fork of its parent's row. */
  private runOn(candidates: readonly Candidate[], hits: readonly boolean[]): void {
    const masked = candidates.map((c, i) => ({ ...c, score: hits[i] ? Math.fround(c.score + LOSE) : c.score }));
    this.running = best(masked, this.settings.numBeams).map((c) => {
      const parent = this.running[c.beam];
      return { input: [...parent.input, c.id], row: parent.row.fork(), score: c.score };
    });
  }

  /**
   * _check_early_stop_heuristic: the leading running beam, at the best length it could reach
   * (the limit when earlyStopping is 'never' and longer is better, else its length now), must beat
   * the worst slot when every slot is filled (else any score above LOSE will do).
   */
  private checkImprovable(length: number): void {
    const s = this.settings;
    const bestLength = s.earlyStopping === 'never' && s.lengthPenalty > 0 ? s.limit : length;
    const bestPossible = lengthNormalized(this.running[0].score, bestLength, s.lengthPenalty);
    const worst = Math.min(...this.slots.map((slot) => slot.score));
    this.improvable &&= this.slots.some((slot) => bestPossible > (slot.finished ? worst : LOSE));
  }
}

/**
 * Merges into best (sorted, at most k) the candidates of one beam's row: score + each
 * log-probability, in float32. A quick test against the k-th score so far comes first
 * (score + x > floor needs x > floor - score, up to rounding), the exact sum after.
 */
function bestOfRow(row: Float32Array, beam: number, score: number, best: Candidate[], k: number): void {
  let floor = best.length === k ? best[k - 1].score : -Infinity;
  let bar = floor - score - SLACK * Math.abs(floor);
  const n = row.length;
  for (let id = 0; id < n; id++) {
    const x = row[id];
    if (!(x >= bar)) continue;
    const sum = Math.fround(score + x);
    if (best.length === k && !(sum > floor)) continue; // until k are in, even -Infinity ones enter, as torch.topk takes them
    let i = best.length;
    while (i > 0 && best[i - 1].score < sum) i--;
    best.splice(i, 0, { beam, id, score: sum });
    if (best.length > k) best.pop();
    if (best.length === k) {
      floor = best[k - 1].score;
      bar = floor - score - SLACK * Math.abs(floor);
    }
  }
}

/** The n entries of highest score, best first; ties keep the earlier entry first. */
function best<T extends { readonly score: number }>(entries: readonly T[], n: number): T[] {
  return entries
    .map((e, i) => [e, i] as const)
    .sort(([a, i], [b, j]) => b.score - a.score || i - j)
    .slice(0, n)
    .map(([e]) => e);
}
