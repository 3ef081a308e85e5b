import { WasmformerError } from './errors.js';
import { readModelFile, type ModelSource } from './io/source.js';
import { loadModel, type LoadOptions } from './model/load.js';
import type { GenerateOptions, Model } from './model/model.js';
import { CharTokenizer } from './tokenizer.js';

export const TOKENIZER_FILE = 'tokenizer.json';

/** A model source with its tokenizer: a folder (path or URL) holding tokenizer.json too, or bytes. */
export type TranslatorSource = string | URL | { config: object | string; weights: ArrayBuffer | Uint8Array; tokenizer: object | string };

/** Text in, text out: a model and the tokenizer it was trained with. The id-level API stays `model`. */
export class Translator {
  constructor(
    readonly model: Model,
    readonly tokenizer: CharTokenizer,
  ) {}

  /** Greedy translation of one text. */
  async translate(text: string, options: GenerateOptions = {}): Promise<string> {
    return this.tokenizer.decodeTarget(await this.model.generate(this.tokenizer.encodeSource(text), options));
  }

  /** The translation as it is produced, one piece of text per token. */
  async *stream(text: string, options: GenerateOptions = {}): AsyncGenerator<string> {
    for await (const id of this.model.stream(this.tokenizer.encodeSource(text), options)) {
      yield this.tokenizer.decodeTarget([id]);
    }
  }
}

/** Loads a model folder with its tokenizer.json, checking that the two agree. */
export async function loadTranslator(source: TranslatorSource, options: LoadOptions = {}): Promise<Translator> {
  const inMemory = typeof source === 'object' && !(source instanceof URL);
  const { json, file } = inMemory
    ? { json: source.tokenizer, file: 'tokenizer' }
    : await readModelFile(source, TOKENIZER_FILE, 'BAD_CONFIG').then(({ bytes, file }) => ({ json: new TextDecoder().decode(bytes), file }));
  const tokenizer = CharTokenizer.fromJSON(json, file);
  const model = await loadModel(source as ModelSource, options);
  const c = model.config;
  const mismatch = ([
    ['src_vocab', tokenizer.srcVocab.length, 'src_vocab_size', c.srcVocabSize],
    ['tgt_vocab', tokenizer.tgtVocab.length, 'tgt_vocab_size', c.tgtVocabSize],
    ['pad_id', tokenizer.padId, 'pad_id', c.padId],
    ['bos_id', tokenizer.bosId, 'bos_id', c.bosId],
    ['eos_id', tokenizer.eosId, 'eos_id', c.eosId],
  ] as const).find(([, mine, , theirs]) => mine !== theirs);
  if (mismatch) {
    model.dispose();
    const [field, mine, configField, theirs] = mismatch;
    throw new WasmformerError('BAD_CONFIG', `${file}: "${field}" (${mine}) does not match the model's ${configField} (${theirs})`);
  }
  return new Translator(model, tokenizer);
}
