// Greedy decoding, as transformers' _sample without do_sample: each hypothesis takes the argmax of
// its processed logits. SampleSearch (sample.ts) changes only how the token is chosen.
import type { DecoderRow } from '../model/decoder-state.js';
import type { Settings } from './options.js';
import { processScores } from './processors.js';
import { feedOf, lengthNormalized, type Feed, type Hypothesis, type Running, type Search, type StepLogits } from './search.js';

/** What a search needs of the model's config. */
export interface Vocabulary {
  readonly eosId: number;
  readonly decoderStartId: number;
}

interface Hypothesis1 extends Running {
  row: DecoderRow;
  logProb: number;
  done: boolean;
}

/** `count` hypotheses of one source, each extended by one token per step until eos or the limit. */
export class GreedySearch implements Search {
  protected readonly hypotheses: Hypothesis1[];
  private fed: (Feed & { at: number[] }) | null = null;

  constructor(
    row: DecoderRow,
    protected readonly settings: Settings,
    protected readonly vocab: Vocabulary,
    count = 1,
  ) {
    this.hypotheses = Array.from({ length: count }, () => ({ input: [vocab.decoderStartId], row, logProb: 0, done: settings.limit === 0 }));
  }

  next(): Feed {
    this.fed = feedOf(this.hypotheses.filter((h) => !h.done));
    return this.fed;
  }

  update(logits: StepLogits): void {
    const { at, rows } = this.fed!;
    const running = this.hypotheses.filter((h) => !h.done);
    const { settings: s, vocab } = this;
    rows.forEach((_, i) => this.prepare(logits.row(i), running[at.indexOf(i)].input));
    const ids = running.map((_, j) => this.choose(logits, at[j]));
    logits.logSoftmax(rows.length);
    const seen = new Set<DecoderRow>();
    running.forEach((h, j) => {
      const id = ids[j];
      h.logProb += logits.row(at[j])[id];
      if (seen.has(h.row)) h.row = h.row.fork();
      seen.add(h.row);
      h.input.push(id);
      h.done = id === vocab.eosId || h.input.length - 1 >= s.limit;
    });
  }

  leader(): readonly number[] {
    return idsOf(this.hypotheses[0].input, this.vocab.eosId);
  }

  results(): Hypothesis[] {
    const found = this.hypotheses.map((h) => ({
      ids: idsOf(h.input, this.vocab.eosId),
      score: lengthNormalized(h.logProb, h.input.length - 1, this.settings.lengthPenalty),
    }));
    return found.sort((a, b) => b.score - a.score);
  }

  /** The rules of the step on one row's logits, in place. */
  protected prepare(scores: Float32Array, input: readonly number[]): void {
    processScores(scores, input, this.settings, this.vocab.eosId);
  }

  /** The token of the hypothesis fed row `row`: the argmax. */
  protected choose(logits: StepLogits, row: number): number {
    return logits.argmax(row);
  }
}

/** A hypothesis' ids: its input without the start token and the final eos. */
export function idsOf(input: readonly number[], eosId: number): number[] {
  const end = input.length > 1 && input[input.length - 1] === eosId ? input.length - 1 : input.length;
  return input.slice(1, end);
}
