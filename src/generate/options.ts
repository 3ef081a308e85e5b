// generate()'s options: what a caller may pass, and how they resolve over the model's generation
// defaults (its generation_config.json, or GenerationConfig's own) into one Settings value.
import { WasmformerError } from '../errors.js';
import type { GenerationDefaults, ModelConfig } from '../families/index.js';
import { describe } from '../io/describe.js';
import { AttentionMaps } from '../model/attention-maps.js';
import { checkOptions, isAbortSignal, isFunction, type OptionSpec } from '../options.js';
import { badWords, type BadWords } from './processors.js';

/** The options of every decoding call; absent ones take the model's generation defaults. */
export interface GenerateOptions {
  /** Tokens to produce at most, the final eos included (transformers' max_new_tokens); at most max_len. */
  maxNewTokens?: number;
  /** The longest sequence, the start token included (max_length); maxNewTokens wins. */
  maxLength?: number;
  /** Tokens to produce at least before eos may come (min_new_tokens). */
  minNewTokens?: number;
  /** The shortest sequence, the start token included (min_length). */
  minLength?: number;
  /** Beam search when more than 1 (num_beams). */
  numBeams?: number;
  /** Beam scores are the summed log-probabilities over (generated length ** lengthPenalty). */
  lengthPenalty?: number;
  /** When beam search stops: true (once numBeams hypotheses are done), false (transformers' heuristic), 'never'. */
  earlyStopping?: boolean | 'never';
  /** Hypotheses search() returns (at most numBeams; with doSample, that many samples). */
  numReturnSequences?: number;
  /** Token sequences never to generate (bad_words_ids). */
  badWordsIds?: number[][];
  /** The token forced as the last one at the length limit; null: none. */
  forcedEosTokenId?: number | null;
  /** No n-gram of this size twice (0: off). */
  noRepeatNgramSize?: number;
  /** Logits of tokens already in the sequence divided (positive) or multiplied (negative) by it. */
  repetitionPenalty?: number;
  /** Samples from the distribution instead of taking its argmax. */
  doSample?: boolean;
  temperature?: number;
  /** Samples among the k likeliest tokens only (0: all). */
  topK?: number;
  /** Samples among the likeliest tokens whose probabilities sum to p. */
  topP?: number;
  /** The sampler's seed: the same seed gives the same output. */
  seed?: number;
  /** generateBatch: the sources decoded together at most (their hypotheses are a step's rows); the others start as sources finish. */
  batchSize?: number;
  /**
   * Called as the leading hypothesis changes: with each new id of a greedy or sampled decoding;
   * with beams, each step's best running hypothesis, then the best finished one. Its arguments:
   * the hypothesis' last id, that id's index, the hypothesis (ids so far), and the source's
   * index in a batch (0 otherwise).
   */
  onToken?: (id: number, index: number, hypothesis: readonly number[], sentence: number) => void;
  /** Records the decoder's attention weights here, step by step (one hypothesis of one source: numBeams 1). */
  attention?: AttentionMaps;
  /** Cancels the call: it rejects with `signal.reason` (an AbortError) before its next step. */
  signal?: AbortSignal;
}

const isInt = (v: unknown): boolean => Number.isSafeInteger(v);
const isNumber = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const isIdLists = (v: unknown): boolean => Array.isArray(v) && v.every((s) => Array.isArray(s) && s.length > 0 && s.every(isInt));

export const GENERATE_OPTIONS: OptionSpec = {
  maxNewTokens: ['an integer', isInt],
  maxLength: ['an integer', isInt],
  minNewTokens: ['an integer', isInt],
  minLength: ['an integer', isInt],
  numBeams: ['an integer', isInt],
  lengthPenalty: ['a finite number', isNumber],
  earlyStopping: ["true, false or 'never'", (v) => typeof v === 'boolean' || v === 'never'],
  numReturnSequences: ['an integer', isInt],
  badWordsIds: ['a list of non-empty lists of token ids', isIdLists],
  forcedEosTokenId: ['a token id or null', (v) => v === null || isInt(v)],
  noRepeatNgramSize: ['an integer', isInt],
  repetitionPenalty: ['a positive number', (v) => isNumber(v) && (v as number) > 0],
  doSample: ['true or false', (v) => typeof v === 'boolean'],
  temperature: ['a positive number', (v) => isNumber(v) && (v as number) > 0],
  topK: ['an integer', isInt],
  topP: ['a number in (0, 1]', (v) => isNumber(v) && (v as number) > 0 && (v as number) <= 1],
  seed: ['an integer', isInt],
  batchSize: ['an integer', isInt],
  onToken: ['a function', isFunction],
  attention: ['an AttentionMaps (new AttentionMaps())', (v) => v instanceof AttentionMaps],
  signal: ['an AbortSignal', isAbortSignal],
};

/** A decoding's every rule, resolved: the caller's options over the model's defaults (GenerationDefaults' meanings). */
export interface Settings extends Pick<GenerationDefaults,
  'numBeams' | 'lengthPenalty' | 'earlyStopping' | 'numReturnSequences' | 'noRepeatNgramSize' | 'repetitionPenalty' | 'doSample' | 'temperature' | 'topK' | 'topP'> {
  /** Steps at most, the one producing eos included. */
  readonly limit: number;
  /** eos is banned at steps before this one. */
  readonly minSteps: number;
  readonly bad: BadWords;
  readonly forcedEos: number | null;
  /** The sampler's seed (the caller's, else a random one). */
  readonly seed: number;
  /** Sources decoded together at most. */
  readonly batchSize: number;
}

/** Checks the options (BAD_ARGUMENT naming one that is wrong) and resolves them over the model's generation defaults. */
export function settings(options: GenerateOptions, c: ModelConfig): Settings {
  checkOptions(options, GENERATE_OPTIONS);
  const g = c.generation;
  const pick = <K extends keyof GenerateOptions & keyof GenerationDefaults>(key: K) => (options[key] ?? g[key]) as NonNullable<GenerationDefaults[K]>;
  const numBeams = integer('numBeams', pick('numBeams'), 1, MAX_ROWS);
  const doSample = pick('doSample');
  const numReturnSequences = integer('numReturnSequences', pick('numReturnSequences'), 1, doSample && numBeams === 1 ? MAX_ROWS : numBeams);
  const forcedEos = options.forcedEosTokenId === undefined ? g.forcedEosTokenId : options.forcedEosTokenId;
  if (forcedEos !== null) integer('forcedEosTokenId', forcedEos, 0, c.tgtVocabSize - 1);
  const bad = options.badWordsIds ?? g.badWordsIds;
  for (const ids of bad) for (const id of ids) integer('badWordsIds', id, 0, c.tgtVocabSize - 1);
  const minLength = integer('minLength', pick('minLength'), 0, c.maxLen + 1);
  const maxBatch = Math.floor(MAX_STEP_ROWS / Math.max(numBeams, numReturnSequences));
  return {
    limit: limitOf(options, g, c.maxLen),
    minSteps: Math.max(integer('minNewTokens', options.minNewTokens ?? 0, 0, c.maxLen), minLength - 1),
    numBeams,
    lengthPenalty: pick('lengthPenalty'),
    earlyStopping: pick('earlyStopping'),
    numReturnSequences,
    bad: badWords(bad, c.eosId),
    forcedEos,
    noRepeatNgramSize: integer('noRepeatNgramSize', pick('noRepeatNgramSize'), 0, c.maxLen + 1),
    repetitionPenalty: pick('repetitionPenalty'),
    doSample,
    temperature: pick('temperature'),
    topK: integer('topK', pick('topK'), 0, Number.MAX_SAFE_INTEGER), // more than the vocabulary keeps every token
    topP: pick('topP'),
    seed: options.seed ?? Math.floor(Math.random() * 2 ** 32),
    batchSize: integer('batchSize', options.batchSize ?? Math.min(BATCH_SIZE, maxBatch), 1, maxBatch),
  };
}

/** Hypotheses of one source at most. */
const MAX_ROWS = 256;

/** generateBatch's sources decoded together, unless told otherwise. */
const BATCH_SIZE = 16;

/** Rows one step may decode (sources × hypotheses): the step scratch holds their logits. */
const MAX_STEP_ROWS = 1024;

/**
 * Steps at most: maxNewTokens (in [0, max_len]), else maxLength less the start token (the
 * caller's in [1, max_len + 1]; the generation config's within the model's positions).
 */
function limitOf(options: GenerateOptions, g: GenerationDefaults, maxLen: number): number {
  if (options.maxNewTokens !== undefined) return integer('maxNewTokens', options.maxNewTokens, 0, maxLen, `max_len = ${maxLen}`);
  if (options.maxLength !== undefined) return integer('maxLength', options.maxLength, 1, maxLen + 1) - 1;
  return g.maxLength === null ? maxLen : Math.min(g.maxLength - 1, maxLen);
}

/** v, when it is an integer in [lo, hi] (hi described as `upTo`); else a BAD_ARGUMENT error naming it. */
function integer(name: string, v: number, lo: number, hi: number, upTo = String(hi)): number {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new WasmformerError('BAD_ARGUMENT', `${name} must be an integer in [${lo}, ${upTo}], got ${describe(v)}`);
  }
  return v;
}
