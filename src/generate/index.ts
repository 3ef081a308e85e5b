// generate(): its options, its rules over the logits, and its searches (greedy, sampling, beam).
import type { ModelConfig } from '../families/index.js';
import type { DecoderRow } from '../model/decoder-state.js';
import { BeamSearch } from './beam.js';
import { GreedySearch } from './greedy.js';
import type { Settings } from './options.js';
import { SampleSearch } from './sample.js';
import type { Search } from './search.js';

export { GENERATE_OPTIONS, settings, type GenerateOptions, type Settings } from './options.js';
export type { Hypothesis, Search, StepLogits } from './search.js';

/** The search the settings ask for, over one source whose first row is `row`. */
export function newSearch(row: DecoderRow, s: Settings, c: ModelConfig): Search {
  if (s.numBeams > 1) return new BeamSearch(row, s, c);
  return s.doSample ? new SampleSearch(row, s, c, s.numReturnSequences) : new GreedySearch(row, s, c);
}
