import { WasmformerError } from './errors.js';
import { familyOf } from './families/index.js';
import { jsonObject } from './io/config.js';
import { describe } from './io/describe.js';
import { readModel } from './io/index.js';
import { readModelConfig, type ModelSource } from './io/source.js';
import { LOAD_OPTIONS, modelOf, type LoadOptions } from './model/load.js';
import { GENERATE_OPTIONS, type GenerateOptions } from './generate/index.js';
import type { Model } from './model/model.js';
import { checkOptions } from './options.js';
import { CLEANUP_REACH } from './tokenizers/added-tokens.js';
import { CharTokenizer, readTokenizer, type Tokenizer, type TokenizerBytes } from './tokenizers/index.js';

export type { Tokenizer, TokenizerBytes } from './tokenizers/index.js';

/**
 * A model source with its tokenizer: a folder (path or URL) or file map holding the tokenizer's
 * files too (tokenizer.json; Marian's source.spm, target.spm, vocab.json, ...), or bytes with
 * `tokenizer` (tokenizer.json's object or text) or `tokenizerFiles` ({ 'source.spm': bytes, ... }).
 */
export type TranslatorSource = Exclude<ModelSource, TokenizerBytes> | TokenizerBytes;

/**
 * A decoding's text as its ids arrive, one new piece per id: the decoded text so far less what
 * was already given out, so that the pieces and flush() join to the whole text. What a later id
 * may still change waits: a character not complete yet (byte pieces still to come: U+FFFD at
 * the end), and a space among the last CLEANUP_REACH characters (the clean-up of spaces before
 * punctuation and contractions, " ," or " n't", can remove it). Should a later id change text
 * already given out in another way, the pieces go on after what was given.
 */
export class TextStream {
  private readonly ids: number[] = [];
  private text = '';
  private given = 0; // characters of the text given out

  constructor(private readonly tokenizer: Pick<Tokenizer, 'decode'>) {}

  push(id: number): string {
    this.ids.push(id);
    this.text = this.tokenizer.decode(this.ids);
    let end = this.text.length;
    while (end > 0 && this.text[end - 1] === '\ufffd') end--;
    const space = this.text.indexOf(' ', Math.max(0, end - CLEANUP_REACH));
    return this.giveUpTo(space >= 0 && space < end ? space : end);
  }

  /** The text still held back once every id is in (a final U+FFFD included). */
  flush(): string {
    return this.giveUpTo(this.text.length);
  }

  private giveUpTo(end: number): string {
    if (end <= this.given) return '';
    const piece = this.text.slice(this.given, end);
    this.given = end;
    return piece;
  }
}

/**
 * Text in, text out: a model and the tokenizer it was trained with. The id-level API stays
 * `model`. An empty text translates to an empty text, without running the model.
 */
export class Translator {
  constructor(
    readonly model: Model,
    readonly tokenizer: Tokenizer,
  ) {}

  /** Drops the model's memory at once and stops its helper threads (model.dispose()); later calls reject with a DISPOSED error. */
  dispose(): Promise<void> {
    return this.model.dispose();
  }

  /**
   * The translation of a text, or of each of a list of texts (decoded together, each as it
   * would be alone), by the model's generation config unless the options say otherwise: beam
   * search with the beams opus-mt's generation_config.json asks for. A long text is best split
   * into sentences by the caller and given as a list.
   */
  translate(text: string, options?: GenerateOptions): Promise<string>;
  translate(texts: readonly string[], options?: GenerateOptions): Promise<string[]>;
  async translate(text: string | readonly string[], options: GenerateOptions = {}): Promise<string | string[]> {
    if (!isList(text)) {
      if (checkText(text) === '') return '';
      return this.tokenizer.decode(await this.model.generate(this.tokenizer.encode(text), options));
    }
    checkOptions(options, GENERATE_OPTIONS);
    const texts = text.map((t, i) => checkText(t, `texts[${i}]`));
    const kept = texts.flatMap((t, i) => (t === '' ? [] : [i])); // empty texts translate to empty texts
    const out = texts.map(() => '');
    if (kept.length === 0) return out;
    const onToken = options.onToken;
    const batchOptions: GenerateOptions = onToken === undefined ? options : { ...options, onToken: (id, index, hypothesis, j) => onToken(id, index, hypothesis, kept[j]) };
    const ids = await this.model.generateBatch(kept.map((i) => this.tokenizer.encode(texts[i])), batchOptions);
    kept.forEach((i, j) => (out[i] = this.tokenizer.decode(ids[j])));
    return out;
  }

  /**
   * The translation as it is produced, a piece of text per token (TextStream: text a later token
   * may still change waits for it): decoded greedily (or sampled), whatever the generation config's num_beams.
   */
  async *stream(text: string, options: GenerateOptions = {}): AsyncGenerator<string> {
    if (checkText(text) === '') return;
    const pieces = new TextStream(this.tokenizer);
    for await (const id of this.model.stream(this.tokenizer.encode(text), options)) {
      const piece = pieces.push(id);
      if (piece !== '') yield piece;
    }
    const rest = pieces.flush();
    if (rest !== '') yield rest;
  }
}

const isList = (text: unknown): text is readonly unknown[] => Array.isArray(text);

function checkText(text: unknown, what = 'text'): string {
  if (typeof text !== 'string') throw new WasmformerError('BAD_ARGUMENT', `${what} must be a string, got ${describe(text)}`);
  return text;
}

/** Loads a model folder with its tokenizer (the files its family's folders carry), checking that the two agree. */
export async function loadTranslator(source: TranslatorSource, options: LoadOptions = {}): Promise<Translator> {
  checkOptions(options, LOAD_OPTIONS);
  const config = await readModelConfig(source);
  const tokenizer = await readTokenizer(source, familyOf(jsonObject(config.data, config.file), config.file).name);
  const model = await modelOf(await readModel(source, { onProgress: options.onProgress, config }), options);
  const mismatch = disagreement(tokenizer, model.config);
  if (mismatch !== null) {
    await model.dispose();
    throw new WasmformerError('BAD_CONFIG', mismatch);
  }
  return new Translator(model, tokenizer);
}

/**
 * Why a tokenizer does not fit a model, or null: its special ids must be the model's, and every
 * id it gives must be one the model has (a character tokenizer's vocabularies are the model's
 * exactly: anything else is the wrong file).
 */
function disagreement(t: Tokenizer, c: Model['config']): string | null {
  if (t instanceof CharTokenizer) {
    const fields = [
      ['src_vocab', t.srcVocab.length, 'src_vocab_size', c.srcVocabSize],
      ['tgt_vocab', t.tgtVocab.length, 'tgt_vocab_size', c.tgtVocabSize],
      ['pad_id', t.padId, 'pad_id', c.padId],
      ['bos_id', t.bosId, 'bos_id', c.decoderStartId],
      ['eos_id', t.eosId, 'eos_id', c.eosId],
    ] as const;
    const bad = fields.find(([, mine, , theirs]) => mine !== theirs);
    return bad ? `${t.file}: "${bad[0]}" (${bad[1]}) does not match the model's ${bad[2]} (${bad[3]})` : null;
  }
  if (t.padId !== c.padId) return `the tokenizer's pad id (${t.padId}) is not the model's pad_token_id (${c.padId})`;
  if (t.eosId !== c.eosId) return `the tokenizer's eos id (${t.eosId}) is not the model's eos_token_id (${c.eosId})`;
  if (t.srcVocabSize > c.srcVocabSize) return `the tokenizer's source ids reach ${t.srcVocabSize - 1}, past the model's vocab_size (${c.srcVocabSize})`;
  if (t.tgtVocabSize > c.tgtVocabSize) return `the tokenizer's target ids reach ${t.tgtVocabSize - 1}, past the model's target vocabulary (${c.tgtVocabSize})`;
  return null;
}
