import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MarianTokenizer } from '../../dist/tokenizers/marian.js';
import { SentencePieceProcessor } from '../../dist/tokenizers/sentencepiece.js';
import { parseModelProto } from '../../dist/tokenizers/spm-proto.js';

/** test/fixtures/tokenizers/, made by tools/make_tokenizer_fixtures.py. */
export const FIXTURES = fileURLToPath(new URL('../fixtures/tokenizers/', import.meta.url));

/** The shared reference's tiny opus-mt-like folder (test/fixtures/shared/): 32 hard strings with HF's ids in expected.json `tokenizer`. */
export const MARIAN_TINY = fileURLToPath(new URL('../fixtures/shared/marian-tiny/', import.meta.url));

/** The Marian folders and what they cover (tools/make_tokenizer_fixtures.py's CASES). */
export const MARIAN_CASES = ['unigram-nfkc-shared', 'bpe-bytes-separate', 'unigram-identity-userdef', 'rules-suffix-separate'];

/** Every SentencePiece model with recorded results: [label, file, key of its record in expected.json]. */
export const SPM_MODELS: [string, string, string][] = [
  ...MARIAN_CASES.flatMap((c): [string, string, string][] => [
    [c, `${c}/source.spm`, 'spm_source'],
    [c, `${c}/target.spm`, 'spm_target'],
  ]),
  ...['spm-word', 'spm-char', 'spm-userdef-shifted', 'spm-unigram-unused', 'spm-bpe-unused', 'spm-no-escape'].map((c): [string, string, string] => [c, `${c}/model.spm`, 'spm']),
];

/** sentencepiece's own answers for one model, one entry per string of strings.json. */
export interface SpmRecord {
  pieces: string[][];
  ids: number[][];
  decoded: string[];
  /** decode_pieces(pieces) where it differs from decoded, else null */
  decoded_pieces: (string | null)[];
  normalized: string[];
  size: number;
  unk_bos_eos_pad: [number, number, number, number];
  normalizer: string;
}

/** transformers' answers for one Marian folder. */
export interface MarianRecord {
  tokens: string[];
  input_ids: number[];
  labels: number[];
  decoded_input: string;
  decoded_labels: string;
}

/** A JSON file, absolute or under the tokenizer fixtures. */
export function readJson(path: string): any {
  return JSON.parse(readFileSync(path.startsWith('/') ? path : FIXTURES + path, 'utf8'));
}

export const STRINGS: string[] = readJson('strings.json');

/** A file of a fixture folder as bytes. */
export function bytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path.startsWith('/') ? path : FIXTURES + path));
}

export function spm(path: string): SentencePieceProcessor {
  return SentencePieceProcessor.fromBytes(bytes(path), path);
}

/** The precompiled_charsmap of a fixture model. */
export function charsmapOf(file: string): Uint8Array {
  return parseModelProto(bytes(file), file).normalizerSpec.precompiledCharsmap;
}

/** The files of a Marian folder (absolute, or under the fixtures), as MarianTokenizer.fromFiles takes them. */
export function marianFiles(folder: string) {
  const dir = folder.startsWith('/') ? folder : FIXTURES + folder + '/';
  const text = (name: string) => (existsSync(dir + name) ? readFileSync(dir + name, 'utf8') : undefined);
  return {
    sourceSpm: bytes(dir + 'source.spm'),
    targetSpm: bytes(dir + 'target.spm'),
    vocab: text('vocab.json'),
    targetVocab: text('target_vocab.json'),
    tokenizerConfig: text('tokenizer_config.json'),
  };
}

export function marian(folder: string): MarianTokenizer {
  return MarianTokenizer.fromFiles(marianFiles(folder));
}
