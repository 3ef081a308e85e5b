import { WasmformerError } from '../errors.js';
import { jsonObject } from '../io/config.js';
import { describe } from '../io/describe.js';
import { AddedTokenTrie, cleanUpTokenization, pyLstrip, pyRstrip, pyStrip, type AddedToken } from './added-tokens.js';
import { SentencePieceProcessor } from './sentencepiece.js';
import { checkText } from './utf8.js';

/** The files of a Hugging Face Marian folder (opus-mt), as bytes or JSON (text or parsed). */
export interface MarianFiles {
  sourceSpm: Uint8Array;
  targetSpm: Uint8Array;
  /** vocab.json (piece -> id): its text, its bytes or the parsed object */
  vocab: unknown;
  /** target_vocab.json, read when tokenizer_config.json has separate_vocabs: true */
  targetVocab?: unknown;
  /** tokenizer_config.json (optional: transformers' defaults) */
  tokenizerConfig?: unknown;
}

/** The name of each file in error messages. */
export type MarianFileNames = Partial<Record<keyof MarianFiles, string>>;

const DEFAULT_NAMES: Required<MarianFileNames> = {
  sourceSpm: 'source.spm',
  targetSpm: 'target.spm',
  vocab: 'vocab.json',
  targetVocab: 'target_vocab.json',
  tokenizerConfig: 'tokenizer_config.json',
};

/** transformers' named special tokens, in its order, with MarianTokenizer's defaults. */
const NAMED_SPECIALS: [string, string | null][] = [
  ['bos_token', null],
  ['eos_token', '</s>'],
  ['unk_token', '<unk>'],
  ['sep_token', null],
  ['pad_token', '<pad>'],
  ['cls_token', null],
  ['mask_token', null],
];

/** What tokenizer_config.json says, with transformers' defaults. */
interface TokenizerConfig {
  separateVocabs: boolean;
  cleanUp: boolean;
  splitSpecialTokens: boolean;
  unkToken: string;
  eosToken: string;
  padToken: string;
  /** every special token, named ones first, in transformers' all_special_tokens order */
  specialTokens: string[];
  /** added_tokens_decoder: id -> token */
  addedTokens: Map<number, AddedToken>;
}

/**
 * transformers' MarianTokenizer (5.18), from a hub folder's files: a leading `>>xx<<` language
 * code is its own token, the rest goes through the source SentencePiece model, each piece is
 * looked up in vocab.json (a piece missing there is <unk>), and </s> is appended. Special and
 * added tokens in the text are split out first, as transformers does. Target text goes through
 * target.spm (and target_vocab.json with separate_vocabs). `decode` drops special tokens and
 * decodes through the SentencePiece model transformers uses: source.spm for a shared vocabulary
 * (its default use_source_tokenizer), target.spm with separate vocabularies.
 */
export class MarianTokenizer {
  /** the id of <pad> (opus-mt models also start decoding from it: config.json's decoder_start_token_id) */
  readonly padId: number;
  /** the id of </s>, which ends every encoding */
  readonly eosId: number;
  /** the id of <unk>, which a piece missing from the vocabulary gets */
  readonly unkId: number;
  /** one more than the largest id in vocab.json (a special token in no vocabulary gets an id past it, as in transformers) */
  readonly srcVocabSize: number;
  /** one more than the largest id in the target vocabulary (target_vocab.json, or vocab.json when shared) */
  readonly tgtVocabSize: number;
  private readonly addedIds = new Map<string, number>();
  private readonly addedTokens: Map<number, AddedToken>;
  private readonly specialTokens: Set<string>;
  private readonly specialIds: Set<number>;
  private readonly trie: AddedTokenTrie;
  /** target id -> piece */
  private readonly pieces = new Map<number, string>();
  /** the model decode() goes through */
  private readonly decodeSpm: SentencePieceProcessor;

  private constructor(
    private readonly source: SentencePieceProcessor,
    private readonly target: SentencePieceProcessor,
    private readonly srcVocab: Map<string, number>,
    private readonly tgtVocab: Map<string, number>,
    private readonly config: TokenizerConfig,
  ) {
    this.addedTokens = new Map(config.addedTokens);
    for (const [id, token] of this.addedTokens) this.addedIds.set(token.content, id);
    this.addSpecialTokens();
    this.trie = new AddedTokenTrie([...this.addedTokens.values()].map((t) => t.content));
    this.specialTokens = new Set(config.specialTokens);
    this.specialIds = new Set(config.specialTokens.map((t) => this.addedIds.get(t)!));
    this.padId = this.addedIds.get(config.padToken)!;
    this.eosId = this.addedIds.get(config.eosToken)!;
    this.unkId = this.addedIds.get(config.unkToken)!;
    this.srcVocabSize = maxId(srcVocab) + 1;
    this.tgtVocabSize = maxId(tgtVocab) + 1;
    for (const [piece, id] of tgtVocab) this.pieces.set(id, piece);
    this.decodeSpm = config.separateVocabs ? target : source;
  }

  /**
   * Reads a Marian folder's files; `names` gives their names for error messages. A corrupt
   * `.spm` is BAD_FILE, a bad vocab.json or tokenizer_config.json BAD_CONFIG, each naming the
   * file and the field.
   */
  static fromFiles(files: MarianFiles, names: MarianFileNames = {}): MarianTokenizer {
    if (typeof files !== 'object' || files === null) {
      throw new WasmformerError('BAD_ARGUMENT', `files must be an object with sourceSpm, targetSpm and vocab, got ${describe(files)}`);
    }
    const name = { ...DEFAULT_NAMES, ...names };
    const config = readConfig(files.tokenizerConfig, name.tokenizerConfig);
    const srcVocab = readVocab(files.vocab, name.vocab);
    let tgtVocab = srcVocab;
    if (config.separateVocabs) {
      if (files.targetVocab === undefined) {
        throw new WasmformerError('BAD_CONFIG', `${name.targetVocab}: missing, and ${name.tokenizerConfig} has separate_vocabs: true`);
      }
      tgtVocab = readVocab(files.targetVocab, name.targetVocab);
    }
    for (const [vocab, file] of [[srcVocab, name.vocab], [tgtVocab, name.targetVocab]] as const) {
      if (!vocab.has(config.unkToken)) {
        throw new WasmformerError('BAD_CONFIG', `${file}: has no entry for the unk_token ${describe(config.unkToken)}`);
      }
    }
    const source = SentencePieceProcessor.fromBytes(files.sourceSpm, name.sourceSpm);
    const target = SentencePieceProcessor.fromBytes(files.targetSpm, name.targetSpm);
    return new MarianTokenizer(source, target, srcVocab, tgtVocab, config);
  }

  /** The source ids of a text, </s> last (transformers' `tokenizer(text).input_ids`). */
  encode(text: string): number[] {
    return this.ids(this.tokenizeWith(text, this.source), this.srcVocab);
  }

  /** The target ids of a text, </s> last (transformers' `tokenizer(text_target=text).input_ids`). */
  encodeTarget(text: string): number[] {
    return this.ids(this.tokenizeWith(text, this.target), this.config.separateVocabs ? this.tgtVocab : this.srcVocab);
  }

  /** The source tokens of a text, before ids (transformers' `tokenizer.tokenize(text)`). */
  tokenize(text: string): string[] {
    return this.tokenizeWith(text, this.source);
  }

  /**
   * The text of target ids, special tokens skipped (transformers' `decode(ids,
   * skip_special_tokens=True)`). An id that is no token is a BAD_INPUT error.
   */
  decode(ids: ArrayLike<number>): string {
    if (typeof ids !== 'object' || ids === null || typeof ids.length !== 'number') {
      throw new WasmformerError('BAD_ARGUMENT', `ids must be an array of token ids, got ${describe(ids)}`);
    }
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (this.specialIds.has(id)) continue;
      tokens.push(this.tokenOf(id, i));
    }
    const text = this.tokensToText(tokens);
    return this.config.cleanUp ? cleanUpTokenization(text) : text;
  }

  /** transformers' tokenize: added tokens split out (with their strip rules), the rest through `spm`. */
  private tokenizeWith(text: string, spm: SentencePieceProcessor): string[] {
    checkText(text, 'text');
    if (this.config.splitSpecialTokens) return languageCodeAndPieces(text, spm);
    const parts = this.trie.split(text);
    for (let i = 0; i < parts.length; i++) this.applyStripRules(parts, i);
    const tokens: string[] = [];
    for (const part of parts) {
      if (part === '') continue;
      if (this.addedIds.has(part) || this.specialTokens.has(part)) tokens.push(part);
      else tokens.push(...languageCodeAndPieces(part, spm));
    }
    return tokens;
  }

  /** An added token's lstrip / rstrip / single_word rules, applied to its neighbours as transformers does. */
  private applyStripRules(parts: string[], i: number): void {
    const id = this.addedIds.get(parts[i]);
    const token = id === undefined ? undefined : this.addedTokens.get(id);
    if (!token) return;
    const left = i > 0 ? parts[i - 1] : '';
    const right = i < parts.length - 1 ? parts[i + 1] : '';
    if (token.rstrip && right) parts[i + 1] = pyLstrip(right);
    if (token.lstrip && left) parts[i - 1] = pyRstrip(left);
    if (!token.singleWord) return;
    if (left && !left.endsWith(' ')) {
      parts[i - 1] += parts[i];
      parts[i] = '';
    } else if (right && !right.startsWith(' ')) {
      parts[i + 1] = parts[i] + parts[i + 1];
      parts[i] = '';
    }
  }

  /** Tokens to ids in `vocab` (added tokens first, a missing piece is that vocabulary's <unk>), </s> appended. */
  private ids(tokens: string[], vocab: Map<string, number>): number[] {
    const unk = vocab.get(this.config.unkToken)!;
    const ids = tokens.map((t) => this.addedIds.get(t) ?? vocab.get(t) ?? unk);
    ids.push(this.eosId);
    return ids;
  }

  /** The token of a target id: an added token, else the vocabulary's piece, else the SentencePiece model's. */
  private tokenOf(id: number, index: number): string {
    if (Number.isInteger(id) && id >= 0) {
      const token = this.addedTokens.get(id)?.content ?? this.pieces.get(id);
      if (token !== undefined) return token;
      if (id < this.decodeSpm.size) return this.decodeSpm.idToPiece(id);
    }
    throw new WasmformerError('BAD_INPUT', `ids: ${describe(id)} at position ${index} is outside the target vocabulary [0, ${this.tgtVocabSize})`);
  }

  /** transformers' convert_tokens_to_string for Marian: SentencePiece-decoded runs, U+2581 as space, stripped. */
  private tokensToText(tokens: string[]): string {
    let text = '';
    let run: string[] = [];
    for (const token of tokens) {
      if (!this.specialTokens.has(token)) {
        run.push(token);
        continue;
      }
      text += `${this.decodeSpm.decodePieces(run)}${token} `;
      run = [];
    }
    text += this.decodeSpm.decodePieces(run);
    return pyStrip(text.replaceAll('\u2581', ' '));
  }

  /**
   * Every special token not yet an added token becomes one, at its id in vocab.json or, when
   * it has none, at the next free index (transformers' _add_tokens(all_special_tokens)).
   */
  private addSpecialTokens(): void {
    // The next free index is the size of vocab.json and the added tokens together.
    let next = this.srcVocab.size;
    for (const content of this.addedIds.keys()) if (!this.srcVocab.has(content)) next++;
    for (const content of this.config.specialTokens) {
      if (content === '' || this.addedIds.has(content)) continue;
      const id = this.srcVocab.get(content) ?? next++;
      this.addedTokens.set(id, { content, lstrip: false, rstrip: false, singleWord: false });
      this.addedIds.set(content, id);
    }
  }
}

/** The largest id of a vocabulary (a loop: a spread of 250 000 arguments overflows the stack). */
function maxId(vocab: Map<string, number>): number {
  let max = 0;
  for (const id of vocab.values()) max = Math.max(max, id);
  return max;
}

/** MarianTokenizer._tokenize: a leading `>>...<<` is one token, the rest is SentencePiece's pieces. */
function languageCodeAndPieces(text: string, spm: SentencePieceProcessor): string[] {
  const end = text.startsWith('>>') ? text.indexOf('<<') : -1;
  if (end < 0) return spm.encodePieces(text);
  return [text.slice(0, end + 2), ...spm.encodePieces(text.slice(end + 2))];
}

/** A JSON file given as its text, its bytes (UTF-8) or parsed, which must be an object. */
function jsonFile(json: unknown, file: string): Record<string, unknown> {
  return jsonObject(json instanceof Uint8Array ? new TextDecoder().decode(json) : json, file);
}

/** vocab.json: every value an id (a non-negative integer). */
function readVocab(json: unknown, file: string): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const [piece, id] of Object.entries(jsonFile(json, file))) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw new WasmformerError('BAD_CONFIG', `${file}: ${describe(piece)} maps to ${describe(id)}, not a token id (a non-negative integer)`);
    }
    vocab.set(piece, id as number);
  }
  if (vocab.size === 0) throw new WasmformerError('BAD_CONFIG', `${file}: has no entries`);
  return vocab;
}

/** tokenizer_config.json, or transformers' defaults when there is none. */
function readConfig(json: unknown, file: string): TokenizerConfig {
  const o = json === undefined || json === null ? {} : jsonFile(json, file);
  const bad = (field: string, why: string) => new WasmformerError('BAD_CONFIG', `${file}: "${field}" ${why}`);
  const bool = (field: string) => {
    const v = o[field] ?? false;
    if (typeof v !== 'boolean') throw bad(field, `must be true or false, got ${describe(v)}`);
    return v;
  };
  const kwargs = o.sp_model_kwargs;
  if (kwargs !== undefined && kwargs !== null && (typeof kwargs !== 'object' || Object.keys(kwargs).length > 0)) {
    throw new WasmformerError('UNSUPPORTED', `${file}: "sp_model_kwargs" ${describe(kwargs)}: only SentencePiece's default encoding is supported (no sampling)`);
  }
  const named = new Map<string, string | null>();
  for (const [field, fallback] of NAMED_SPECIALS) {
    const v = o[field];
    named.set(field, v === undefined ? fallback : v === null ? null : tokenContent(v, () => bad(field, `must be a token (a string or an AddedToken object), got ${describe(v)}`)));
  }
  for (const field of ['unk_token', 'eos_token', 'pad_token']) {
    if (!named.get(field)) throw bad(field, 'must be a token: MarianTokenizer needs it');
  }
  // Other "*_token" strings are model-specific special tokens, after the named ones.
  for (const [field, v] of Object.entries(o)) {
    if (field.endsWith('_token') && !named.has(field) && (typeof v === 'string' || isAddedTokenJson(v))) named.set(field, tokenContent(v, () => bad(field, 'is not a token')));
  }
  const extras = extraSpecials(o, named, bad);
  return {
    separateVocabs: bool('separate_vocabs'),
    cleanUp: bool('clean_up_tokenization_spaces'),
    splitSpecialTokens: bool('split_special_tokens'),
    unkToken: named.get('unk_token')!,
    eosToken: named.get('eos_token')!,
    padToken: named.get('pad_token')!,
    specialTokens: unique([...named.values()].filter((t): t is string => t !== null).concat(extras)),
    addedTokens: readAddedTokens(o.added_tokens_decoder, bad),
  };
}

/**
 * extra_special_tokens, or additional_special_tokens when it is absent or empty (as transformers
 * reads them): a list of tokens, or an object of named ones, which join `named`.
 */
function extraSpecials(o: Record<string, unknown>, named: Map<string, string | null>, bad: (field: string, why: string) => WasmformerError): string[] {
  const empty = (v: unknown) => v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0);
  const field = empty(o.extra_special_tokens) && o.additional_special_tokens !== undefined ? 'additional_special_tokens' : 'extra_special_tokens';
  const value = o[field] ?? [];
  const token = (t: unknown, at: string) => tokenContent(t, () => bad(at, `must be a token, got ${describe(t)}`));
  if (Array.isArray(value)) return value.map((t, i) => token(t, `${field}[${i}]`));
  if (typeof value !== 'object') throw bad(field, `must be a list of tokens, got ${describe(value)}`);
  for (const [name, t] of Object.entries(value as object)) named.set(name, token(t, `${field}.${name}`));
  return [];
}

/**
 * added_tokens_decoder: { "<id>": { content, lstrip, rstrip, single_word, ... } }. Its `special`
 * flag changes nothing here: transformers' special tokens are the named and extra ones.
 */
function readAddedTokens(json: unknown, bad: (field: string, why: string) => WasmformerError): Map<number, AddedToken> {
  const tokens = new Map<number, AddedToken>();
  if (json === undefined || json === null) return tokens;
  if (typeof json !== 'object' || Array.isArray(json)) throw bad('added_tokens_decoder', `must be an object, got ${describe(json)}`);
  for (const [key, value] of Object.entries(json)) {
    const field = `added_tokens_decoder.${key}`;
    if (!/^(0|[1-9]\d{0,8})$/.test(key)) throw bad(field, 'is not keyed by a token id');
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(field, `must be an object, got ${describe(value)}`);
    const t = value as Record<string, unknown>;
    if (typeof t.content !== 'string') throw bad(`${field}.content`, `must be a string, got ${describe(t.content)}`);
    const flag = (name: string) => {
      const v = t[name] ?? false;
      if (typeof v !== 'boolean') throw bad(`${field}.${name}`, `must be true or false, got ${describe(v)}`);
      return v;
    };
    tokens.set(Number(key), { content: t.content, lstrip: flag('lstrip'), rstrip: flag('rstrip'), singleWord: flag('single_word') });
  }
  return tokens;
}

/** {"__type": "AddedToken", "content": ...}: how tokenizer_config.json may spell a token. */
function isAddedTokenJson(v: unknown): v is { content: string } {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>).__type === 'AddedToken' && typeof (v as Record<string, unknown>).content === 'string';
}

function tokenContent(v: unknown, error: () => WasmformerError): string {
  if (typeof v === 'string') return v;
  if (isAddedTokenJson(v)) return v.content;
  throw error();
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
