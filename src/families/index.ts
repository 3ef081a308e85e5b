// Checkpoint families: which one a config.json belongs to, and the checks every family shares.
import { WasmformerError } from '../errors.js';
import { describe } from '../io/describe.js';
import { Fields, configError, jsonObject } from '../io/config.js';
import type { FamilyName, ModelConfig, Slot, TensorSource } from './architecture.js';
import { marian } from './marian.js';
import { tutorial } from './tutorial.js';

export * from './architecture.js';

/** One checkpoint family: its config fields and its tensor names, in one module each. */
export interface Family {
  readonly name: FamilyName;
  /** config.json (and generation_config.json when the folder has one) as the architecture. */
  config(fields: Fields, generation: Fields | null): ModelConfig;
  /** Where the checkpoint stores each slot, in checkpoint order; lazy, so a config claiming 2^53 layers stops at the first missing tensor. */
  tensors(c: ModelConfig): Iterable<[Slot, TensorSource]>;
  /** Why a tensor the family does not read contradicts the config (a layer past its count), or null. */
  contradiction(c: ModelConfig, name: string): string | null;
  /** The tokenizer files its folders carry: those a translator needs, and those it reads when present. */
  readonly tokenizerFiles: { readonly required: readonly string[]; readonly optional: readonly string[] };
  /** Whether its folders carry generation_config.json (generate()'s defaults). */
  readonly generationConfig: boolean;
  /** The config.json fields behind the architecture's sizes and ids, for errors. */
  readonly fields: Readonly<Record<'maxLen' | 'padId' | 'decoderStartId' | 'eosId' | 'srcVocabSize' | 'tgtVocabSize', string>>;
}

/** config.json's model_type values and their families; a config without one is the tutorial layout. */
const FAMILIES: Record<string, Family> = { marian };

/** The family of a parsed config.json: by model_type, or the tutorial layout when there is none. */
export function familyOf(config: Record<string, unknown>, file: string): Family {
  const type = Object.hasOwn(config, 'model_type') ? config.model_type : undefined;
  if (type === undefined || type === null) return tutorial;
  if (typeof type === 'string' && Object.hasOwn(FAMILIES, type)) return FAMILIES[type];
  throw new WasmformerError('UNSUPPORTED',
    `${file}: model_type ${describe(type)} is not supported (wasmformer loads "marian", and the PyTorch tutorial's layout, which has no model_type)`);
}

/**
 * Reads and checks config.json (given parsed, or as its text) and, for families that have one,
 * generation_config.json: the family's fields, then what every architecture must satisfy.
 * Errors are BAD_CONFIG (or UNSUPPORTED for an unknown model_type) naming the file and field.
 * The result is frozen: a model sizes its memory by these numbers.
 */
export function parseConfig(json: unknown, file: string, generation?: { json: unknown; file: string }): ModelConfig {
  const obj = jsonObject(json, file);
  const family = familyOf(obj, file);
  const gen = generation === undefined ? null : new Fields(jsonObject(generation.json, generation.file), generation.file);
  const c = family.config(new Fields(obj, file), gen);
  checkArchitecture(c, family, file);
  return deepFreeze(c);
}

/** What any family's architecture must satisfy: positions to decode with, ids inside the vocabularies. */
function checkArchitecture(c: ModelConfig, { fields }: Family, file: string): void {
  const fail = (message: string): never => {
    throw configError(file, message);
  };
  // A decoder input is at least [start, token]: one position cannot generate anything.
  if (c.maxLen < 2) fail(`field "${fields.maxLen}" must be at least 2, got ${c.maxLen}`);
  for (const key of ['padId', 'decoderStartId', 'eosId'] as const) {
    if (c[key] >= c.tgtVocabSize) fail(`field "${fields[key]}" (${c[key]}) must be below ${fields.tgtVocabSize} (${c.tgtVocabSize})`);
  }
  // Source padding is found by comparing source ids with the pad id.
  if (c.padId >= c.srcVocabSize) fail(`field "${fields.padId}" (${c.padId}) must be below ${fields.srcVocabSize} (${c.srcVocabSize})`);
  for (const ids of c.generation.badWordsIds) {
    const bad = ids.find((id) => id >= c.tgtVocabSize);
    if (bad !== undefined) fail(`field "bad_words_ids" holds ${bad}, not below ${fields.tgtVocabSize} (${c.tgtVocabSize})`);
  }
  const forced = c.generation.forcedEosTokenId;
  if (forced !== null && forced >= c.tgtVocabSize) fail(`field "forced_eos_token_id" (${forced}) must be below ${fields.tgtVocabSize} (${c.tgtVocabSize})`);
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Every family wasmformer loads. */
export function allFamilies(): Family[] {
  return [tutorial, ...Object.values(FAMILIES)];
}

/** The family of a checked config. */
export function familyNamed(name: FamilyName): Family {
  return name === 'tutorial' ? tutorial : FAMILIES[name];
}
