import { describe, expect, it } from 'vitest';
import { AddedTokenTrie } from '../../dist/tokenizers/added-tokens.js';
import { MarianTokenizer } from '../../dist/tokenizers/marian.js';
import { errorOf } from '../expect-error.js';
import { bytes, marian, MARIAN_CASES, MARIAN_TINY, marianFiles, readJson, STRINGS, type MarianRecord } from './read-fixtures.js';

describe.each(MARIAN_CASES)('MarianTokenizer on %s against transformers 5.18', (name) => {
  const expected = readJson(`${name}/expected.json`);
  const want: MarianRecord[] = expected.marian;
  const tok = marian(name);

  it('has transformers\' special ids and vocabulary sizes', () => {
    const s = expected.special;
    expect([tok.padId, tok.eosId, tok.unkId]).toEqual([s.pad_id, s.eos_id, s.unk_id]);
    expect([tok.srcVocabSize, tok.tgtVocabSize]).toEqual([s.src_vocab_size, s.tgt_vocab_size]);
  });

  it(`gives transformers' tokens, input_ids and labels for all ${STRINGS.length} strings`, () => {
    expect(want.length).toBe(STRINGS.length);
    STRINGS.forEach((s, i) => {
      expect(tok.tokenize(s), JSON.stringify(s)).toEqual(want[i].tokens);
      expect(tok.encode(s), JSON.stringify(s)).toEqual(want[i].input_ids);
      expect(tok.encodeTarget(s), JSON.stringify(s)).toEqual(want[i].labels);
    });
  });

  it('decodes every input_ids and labels to transformers\' text', () => {
    STRINGS.forEach((s, i) => {
      expect(tok.decode(want[i].labels), JSON.stringify(s)).toBe(want[i].decoded_labels);
      expect(tok.decode(want[i].input_ids), JSON.stringify(s)).toBe(want[i].decoded_input);
    });
  });

  it('decodes random id sequences (byte pieces, specials, unknown pieces) to transformers\' text', () => {
    for (const { ids, text } of expected.decode_random) expect(tok.decode(ids), JSON.stringify(ids)).toBe(text);
    expect(tok.decode(Int32Array.from(expected.decode_random[0].ids))).toBe(expected.decode_random[0].text);
  });
});

describe('MarianTokenizer on the shared marian-tiny reference', () => {
  const tok = marian(MARIAN_TINY);
  const items: { text: string; src_ids: number[]; tgt_ids: number[]; src_pieces: string[]; decoded_tgt: string }[] = readJson(`${MARIAN_TINY}expected.json`).tokenizer;

  it('matches its 32 hard strings: source and target ids, pieces and decoded text', () => {
    expect(items.length).toBe(32);
    for (const t of items) {
      expect(tok.encode(t.text), JSON.stringify(t.text)).toEqual(t.src_ids);
      expect(tok.encodeTarget(t.text), JSON.stringify(t.text)).toEqual(t.tgt_ids);
      // Its pieces are transformers' tokens of the ids: a piece missing from vocab.json reads <unk>.
      const pieces = tok.tokenize(t.text).map((p, i) => (t.src_ids[i] === tok.unkId ? '<unk>' : p));
      expect([...pieces, '</s>']).toEqual(t.src_pieces);
      expect(tok.decode(t.tgt_ids)).toBe(t.decoded_tgt);
    }
    expect([tok.padId, tok.eosId, tok.unkId, tok.srcVocabSize, tok.tgtVocabSize]).toEqual([470, 0, 1, 471, 471]);
  });
});

describe('MarianTokenizer errors', () => {
  const files = marianFiles('bpe-bytes-separate');
  const make = (over: Record<string, unknown>, names = {}) => () => MarianTokenizer.fromFiles({ ...files, ...over } as never, names);

  it('names the .spm file that is corrupt or truncated', () => {
    const spm = bytes('bpe-bytes-separate/source.spm');
    expect(errorOf(make({ sourceSpm: spm.subarray(0, spm.length - 7) }), 'BAD_FILE')).toMatch(/^source\.spm: truncated: a field of \d+ bytes at byte \d+ runs past the end of its message \(byte \d+\)$/);
    // Cut between two pieces, the file is a valid message that lacks its trainer_spec.
    expect(errorOf(make({ sourceSpm: spm.subarray(0, 1000) }), 'BAD_FILE')).toMatch(/^source\.spm: pieces\[\d+\]: /);
    expect(errorOf(make({ targetSpm: new TextEncoder().encode('version https://git-lfs.github.com/spec/v1') }), 'BAD_FILE')).toMatch(/^target\.spm: /);
    expect(errorOf(make({ targetSpm: spm.subarray(0, 1000) }, { targetSpm: 'models/x/target.spm' }), 'BAD_FILE')).toMatch(/^models\/x\/target\.spm: /);
    expect(errorOf(make({ sourceSpm: 'source.spm' }), 'BAD_ARGUMENT')).toBe('source.spm: expected the file\'s bytes as a Uint8Array, got "source.spm"');
  });

  it('refuses a bad vocab.json, naming the file and the entry', () => {
    expect(errorOf(make({ vocab: '{"a": 1,' }), 'BAD_CONFIG')).toMatch(/^vocab\.json: not valid JSON \(/);
    expect(errorOf(make({ vocab: '[1, 2]' }), 'BAD_CONFIG')).toBe('vocab.json: must be a JSON object, got [1,2]');
    expect(errorOf(make({ vocab: { '<unk>': 1, a: 1.5 } }), 'BAD_CONFIG')).toBe('vocab.json: "a" maps to 1.5, not a token id (a non-negative integer)');
    expect(errorOf(make({ vocab: { '<unk>': 1, a: -1 } }), 'BAD_CONFIG')).toBe('vocab.json: "a" maps to -1, not a token id (a non-negative integer)');
    expect(errorOf(make({ vocab: {} }), 'BAD_CONFIG')).toBe('vocab.json: has no entries');
    expect(errorOf(make({ vocab: { a: 0 } }, { vocab: 'my/vocab.json' }), 'BAD_CONFIG')).toBe('my/vocab.json: has no entry for the unk_token "<unk>"');
    expect(errorOf(make({ targetVocab: { a: 0 } }), 'BAD_CONFIG')).toBe('target_vocab.json: has no entry for the unk_token "<unk>"');
    expect(errorOf(make({ targetVocab: undefined }), 'BAD_CONFIG')).toBe('target_vocab.json: missing, and tokenizer_config.json has separate_vocabs: true');
  });

  it('refuses a bad tokenizer_config.json, naming the field', () => {
    const config = (c: unknown) => make({ tokenizerConfig: c });
    expect(errorOf(config('{'), 'BAD_CONFIG')).toMatch(/^tokenizer_config\.json: not valid JSON/);
    expect(errorOf(config({ separate_vocabs: 'yes' }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "separate_vocabs" must be true or false, got "yes"');
    expect(errorOf(config({ unk_token: null }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "unk_token" must be a token: MarianTokenizer needs it');
    expect(errorOf(config({ pad_token: '' }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "pad_token" must be a token: MarianTokenizer needs it');
    expect(errorOf(config({ eos_token: 7 }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "eos_token" must be a token (a string or an AddedToken object), got 7');
    expect(errorOf(config({ additional_special_tokens: '<x>' }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "additional_special_tokens" must be a list of tokens, got "<x>"');
    expect(errorOf(config({ extra_special_tokens: 7 }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "extra_special_tokens" must be a list of tokens, got 7');
    expect(errorOf(config({ extra_special_tokens: ['<x>', 3] }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "extra_special_tokens[1]" must be a token, got 3');
    expect(errorOf(config({ added_tokens_decoder: { x: { content: 'a' } } }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "added_tokens_decoder.x" is not keyed by a token id');
    expect(errorOf(config({ added_tokens_decoder: { 5: { lstrip: true } } }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "added_tokens_decoder.5.content" must be a string, got undefined');
    expect(errorOf(config({ added_tokens_decoder: { 5: { content: 'a', rstrip: 1 } } }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "added_tokens_decoder.5.rstrip" must be true or false, got 1');
    expect(errorOf(config({ sp_model_kwargs: { enable_sampling: true } }), 'UNSUPPORTED')).toBe('tokenizer_config.json: "sp_model_kwargs" an object: only SentencePiece\'s default encoding is supported (no sampling)');
    expect(errorOf(make({ tokenizerConfig: [] }, { tokenizerConfig: 'c.json' }), 'BAD_CONFIG')).toBe('c.json: must be a JSON object, got []');
  });

  it('reads tokens spelt as AddedToken objects, and takes the vocabulary from the config', () => {
    const tok = MarianTokenizer.fromFiles({ ...files, tokenizerConfig: { separate_vocabs: true, sp_model_kwargs: {}, eos_token: { __type: 'AddedToken', content: '</s>' }, foo_token: '<foo>' } });
    expect(tok.eosId).toBe(0);
    // <foo> is a special token in no vocabulary: it gets the next free id, and decode skips it.
    const foo = tok.encode('a <foo>').at(-2)!;
    expect(foo).toBe(tok.srcVocabSize);
    expect(tok.decode([foo])).toBe('');
    expect(() => MarianTokenizer.fromFiles({ ...files, tokenizerConfig: { separate_vocabs: false } })).not.toThrow();
  });

  it('reads extra_special_tokens as a list or an object of named tokens, and additional_special_tokens when it is empty', () => {
    // The special tokens of a config among the tokens of a text: they are split out whole.
    const specials = (config: object) => {
      const tok = MarianTokenizer.fromFiles({ ...files, tokenizerConfig: { separate_vocabs: true, ...config } });
      return tok.tokenize('a <x> b <y> c').filter((t) => t === '<x>' || t === '<y>');
    };
    expect(specials({})).toEqual([]);
    expect(specials({ extra_special_tokens: ['<x>', '<y>'] })).toEqual(['<x>', '<y>']);
    expect(specials({ extra_special_tokens: [], additional_special_tokens: ['<y>'] })).toEqual(['<y>']);
    expect(specials({ extra_special_tokens: {}, additional_special_tokens: ['<x>'] })).toEqual(['<x>']);
    expect(specials({ extra_special_tokens: ['<y>'], additional_special_tokens: ['<x>'] })).toEqual(['<y>']);
    expect(specials({ extra_special_tokens: { x_token: '<x>', y_token: { __type: 'AddedToken', content: '<y>' } } })).toEqual(['<x>', '<y>']);
    expect(errorOf(() => specials({ extra_special_tokens: { x_token: 5 } }), 'BAD_CONFIG')).toBe('tokenizer_config.json: "extra_special_tokens.x_token" must be a token, got 5');
  });

  it('takes the JSON files as text, bytes or parsed objects alike', () => {
    const text = marian('rules-suffix-separate');
    const parsed = marianFiles('rules-suffix-separate');
    const utf8 = (s: unknown) => new TextEncoder().encode(s as string);
    const fromBytes = MarianTokenizer.fromFiles({ ...parsed, vocab: utf8(parsed.vocab), targetVocab: utf8(parsed.targetVocab), tokenizerConfig: utf8(parsed.tokenizerConfig) });
    const fromObjects = MarianTokenizer.fromFiles({ ...parsed, vocab: JSON.parse(parsed.vocab!), targetVocab: JSON.parse(parsed.targetVocab!), tokenizerConfig: JSON.parse(parsed.tokenizerConfig!) });
    for (const s of STRINGS.slice(0, 60)) {
      expect(fromBytes.encode(s)).toEqual(text.encode(s));
      expect(fromObjects.encodeTarget(s)).toEqual(text.encodeTarget(s));
    }
  });

  it('refuses a text that is not a string, and ids that are no token', () => {
    const tok = marian('bpe-bytes-separate');
    expect(errorOf(() => tok.encode(undefined as unknown as string), 'BAD_ARGUMENT')).toBe('text must be a string, got undefined');
    expect(errorOf(() => tok.encodeTarget(['a'] as unknown as string), 'BAD_ARGUMENT')).toBe('text must be a string, got ["a"]');
    expect(errorOf(() => tok.encode('x\udfff'), 'BAD_ARGUMENT')).toBe('text has a lone surrogate U+DFFF at index 1, which is not Unicode text');
    expect(errorOf(() => tok.decode([5, 900]), 'BAD_INPUT')).toBe('ids: 900 at position 1 is outside the target vocabulary [0, 872)');
    expect(errorOf(() => tok.decode([-1]), 'BAD_INPUT')).toBe('ids: -1 at position 0 is outside the target vocabulary [0, 872)');
    expect(errorOf(() => tok.decode([2.5]), 'BAD_INPUT')).toBe('ids: 2.5 at position 0 is outside the target vocabulary [0, 872)');
    expect(errorOf(() => tok.decode(null as unknown as number[]), 'BAD_ARGUMENT')).toBe('ids must be an array of token ids, got null');
    expect(errorOf(() => MarianTokenizer.fromFiles(null as never), 'BAD_ARGUMENT')).toBe('files must be an object with sourceSpm, targetSpm and vocab, got null');
  });

  it('decodes an id missing from the vocabulary through the SentencePiece model, as transformers does', () => {
    const vocab = JSON.parse(files.targetVocab as string) as Record<string, number>;
    const [piece, id] = Object.entries(vocab).find(([p]) => p.startsWith('\u2581') && p.length > 3)!;
    delete vocab[piece];
    const tok = MarianTokenizer.fromFiles({ ...files, targetVocab: vocab });
    // The id now falls back to target.spm's piece of that number, whatever it is.
    expect(tok.decode([id])).not.toBe('');
    expect(tok.encodeTarget(piece.slice(1))).toContain(1);
  });
});

describe('AddedTokenTrie against transformers\' Trie.split', () => {
  const cases: { tokens: string[]; splits: [string, string[]][] }[] = readJson('trie.json');

  it.each(cases.map((c) => [c.tokens.join(' '), c] as const))('splits texts around %s', (_, c) => {
    const trie = new AddedTokenTrie(c.tokens);
    expect(c.splits.length).toBeGreaterThan(50);
    for (const [text, want] of c.splits) expect(trie.split(text), JSON.stringify(text)).toEqual(want);
  });
});
