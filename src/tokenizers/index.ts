// Tokenizers: text <-> ids, whichever a checkpoint family's folders carry.
import { WasmformerError } from '../errors.js';
import { familyNamed, type FamilyName } from '../families/index.js';
import { isModelBytes, jsonHead, readModelFile, readOptionalModelFile, type ModelBytes, type ModelFileUrls } from '../io/source.js';
import { CharTokenizer } from './chars.js';
import { MarianTokenizer, type MarianFiles } from './marian.js';

export { CharTokenizer, type CharTokenizerJSON } from './chars.js';
export { MarianTokenizer } from './marian.js';
export { SentencePieceProcessor } from './sentencepiece.js';

/** Text <-> token ids, whatever tokenizer a model was trained with. */
export interface Tokenizer {
  /** The encoder's input ids for a text. */
  encode(text: string): number[];
  /** A target text as ids. */
  encodeTarget(text: string): number[];
  /** Target ids as text, special tokens skipped. */
  decode(ids: ArrayLike<number>): string;
  /** The source tokens of a text, as the encoder sees them (for labels). */
  tokenize(text: string): string[];
  /** The special ids it shares with the model. */
  readonly padId: number;
  readonly eosId: number;
  /** One more than the largest source and target ids it gives. */
  readonly srcVocabSize: number;
  readonly tgtVocabSize: number;
}

/** A model in memory with its tokenizer files by name ({ 'source.spm': bytes, ... }); `tokenizer` is tokenizer.json's object or text. */
export type TokenizerBytes = ModelBytes & { tokenizer?: object | string; tokenizerFiles?: Record<string, Uint8Array | string | object> };

/** Reads the tokenizer of a family from a folder, a file map or bytes in memory. Missing files are BAD_CONFIG naming them. */
export async function readTokenizer(source: string | URL | ModelFileUrls | TokenizerBytes, family: FamilyName): Promise<Tokenizer> {
  const files = new Map<string, { data: Uint8Array | string | object; file: string }>();
  const { required, optional } = familyNamed(family).tokenizerFiles;
  for (const name of [...required, ...optional]) {
    const found = await readOne(source, name, !required.includes(name));
    if (found !== null) files.set(name, found);
  }
  if (family === 'tutorial') {
    const { data, file } = files.get('tokenizer.json')!;
    return CharTokenizer.fromJSON(data instanceof Uint8Array ? new TextDecoder().decode(data) : data, file);
  }
  const data = (name: string) => files.get(name)?.data;
  const marian: MarianFiles = {
    sourceSpm: data('source.spm') as Uint8Array, targetSpm: data('target.spm') as Uint8Array, vocab: data('vocab.json'),
    targetVocab: data('target_vocab.json'), tokenizerConfig: data('tokenizer_config.json'),
  };
  const name = (n: string) => files.get(n)?.file ?? n;
  return MarianTokenizer.fromFiles(marian, {
    sourceSpm: name('source.spm'), targetSpm: name('target.spm'), vocab: name('vocab.json'),
    targetVocab: name('target_vocab.json'), tokenizerConfig: name('tokenizer_config.json'),
  });
}

/** One tokenizer file, or null when an optional one is absent; a required one missing is BAD_CONFIG naming it. */
async function readOne(source: string | URL | ModelFileUrls | TokenizerBytes, name: string, optional: boolean): Promise<{ data: Uint8Array | string | object; file: string } | null> {
  if (isModelBytes(source)) {
    const bytes = source as TokenizerBytes;
    const key = name === 'tokenizer.json' ? 'tokenizer' : `tokenizerFiles["${name}"]`;
    const data = name === 'tokenizer.json' ? bytes.tokenizer : bytes.tokenizerFiles?.[name];
    if (data !== undefined) return { data, file: name === 'tokenizer.json' ? 'tokenizer' : name };
    if (optional) return null;
    throw new WasmformerError('BAD_CONFIG', `${key}: missing (a translator needs the model's tokenizer)`);
  }
  const options = name.endsWith('.json') ? { head: jsonHead } : {};
  if (!optional) {
    const { bytes, file } = await readModelFile(source, name, 'BAD_CONFIG', options);
    return { data: bytes, file };
  }
  const found = await readOptionalModelFile(source, name, 'BAD_CONFIG', options);
  return found === null ? null : { data: found.bytes, file: found.file };
}
