import { WasmformerError } from './errors.js';
import { describe } from './io/describe.js';
import { isModelBytes, jsonHead, readModelFile, type ModelBytes, type ModelSource } from './io/source.js';
import { LOAD_OPTIONS, loadModel, type LoadOptions } from './model/load.js';
import type { GenerateOptions, Model } from './model/model.js';
import { checkOptions } from './options.js';
import { CharTokenizer } from './tokenizer.js';

export const TOKENIZER_FILE = 'tokenizer.json';

/** A model source with its tokenizer: a folder (path or URL) or file map holding tokenizer.json too, or bytes. */
export type TranslatorSource = Exclude<ModelSource, ModelBytes> | (ModelBytes & { tokenizer: object | string });

/** Text <-> token ids, whatever tokenizer a model was trained with. */
export interface Tokenizer {
  /** The encoder's input ids for a text. */
  encode(text: string): number[];
  /** A target text as ids. */
  encodeTarget(text: string): number[];
  /** Target ids as text, special tokens skipped. */
  decode(ids: ArrayLike<number>): string;
}

/**
 * A decoding's text as its ids arrive, one new piece per id: the decoded text so far less what
 * was already given out (so pieces join to the whole text whatever the tokenizer does with
 * spaces). A piece that would end inside a character (byte pieces still to come) waits.
 */
export class TextStream {
  private readonly ids: number[] = [];
  private given = '';

  constructor(private readonly tokenizer: Tokenizer) {}

  push(id: number): string {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids);
    if (!text.startsWith(this.given) || text.endsWith('\ufffd')) return '';
    const piece = text.slice(this.given.length);
    this.given = text;
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
    readonly tokenizer: CharTokenizer,
  ) {}

  /** Greedy translation of one text. */
  async translate(text: string, options: GenerateOptions = {}): Promise<string> {
    if (checkText(text) === '') return '';
    return this.tokenizer.decode(await this.model.generate(this.tokenizer.encode(text), options));
  }

  /** The translation as it is produced, one piece of text per token. */
  async *stream(text: string, options: GenerateOptions = {}): AsyncGenerator<string> {
    if (checkText(text) === '') return;
    const pieces = new TextStream(this.tokenizer);
    for await (const id of this.model.stream(this.tokenizer.encode(text), options)) {
      const piece = pieces.push(id);
      if (piece !== '') yield piece;
    }
  }
}

function checkText(text: unknown): string {
  if (typeof text !== 'string') throw new WasmformerError('BAD_ARGUMENT', `text must be a string, got ${describe(text)}`);
  return text;
}

/** Loads a model folder with its tokenizer.json, checking that the two agree. */
export async function loadTranslator(source: TranslatorSource, options: LoadOptions = {}): Promise<Translator> {
  checkOptions(options, LOAD_OPTIONS);
  const { json, file } = isModelBytes(source)
    ? { json: (source as { tokenizer?: unknown }).tokenizer, file: 'tokenizer' }
    : await readModelFile(source, TOKENIZER_FILE, 'BAD_CONFIG', { head: jsonHead }).then(({ bytes, file }) => ({ json: new TextDecoder().decode(bytes), file }));
  const tokenizer = CharTokenizer.fromJSON(json, file);
  const model = await loadModel(source, options);
  const c = model.config;
  const mismatch = ([
    ['src_vocab', tokenizer.srcVocab.length, 'src_vocab_size', c.srcVocabSize],
    ['tgt_vocab', tokenizer.tgtVocab.length, 'tgt_vocab_size', c.tgtVocabSize],
    ['pad_id', tokenizer.padId, 'pad_id', c.padId],
    ['bos_id', tokenizer.bosId, 'bos_id', c.decoderStartId],
    ['eos_id', tokenizer.eosId, 'eos_id', c.eosId],
  ] as const).find(([, mine, , theirs]) => mine !== theirs);
  if (mismatch) {
    model.dispose();
    const [field, mine, configField, theirs] = mismatch;
    throw new WasmformerError('BAD_CONFIG', `${file}: "${field}" (${mine}) does not match the model's ${configField} (${theirs})`);
  }
  return new Translator(model, tokenizer);
}
