import { describe, expect, it } from 'vitest';
import { CharTokenizer } from '../dist/tokenizers/chars.js';
import { readDemo, type Item } from './demo-model.js';
import { errorOf } from './expect-error.js';

/** A small valid tokenizer.json to mutate: specials at 0..2, a non-BMP character among the entries. */
function tiny(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'chars',
    src_vocab: ['<pad>', '<bos>', '<eos>', '😀', 'a', 'b'],
    tgt_vocab: ['<pad>', '<bos>', '<eos>', 'x', 'y', ' '],
    pad_id: 0,
    bos_id: 1,
    eos_id: 2,
    unk_id: null,
    src_add_bos: false,
    src_add_eos: true,
    ...overrides,
  };
}

describe('CharTokenizer on the shipped numbers model', () => {
  const tok = CharTokenizer.fromJSON(readDemo('tokenizer.json'), 'models/numbers/tokenizer.json');
  const config = readDemo('config.json');

  it('agrees with config.json on vocabulary sizes and special ids', () => {
    expect(tok.srcVocabSize).toBe(config.src_vocab_size);
    expect(tok.tgtVocabSize).toBe(config.tgt_vocab_size);
    expect([tok.padId, tok.bosId, tok.eosId]).toEqual([config.pad_id, config.bos_id, config.eos_id]);
  });

  for (const name of ['heldout.json', 'samples.json']) {
    const items: Item[] = readDemo(name).items;

    it(`encodes every source of ${name} to PyTorch's ids and decodes every greedy output to its text`, () => {
      expect(items.length).toBeGreaterThan(0);
      for (const it of items) {
        expect(tok.encode(it.text), it.text).toEqual(it.src_ids);
        expect(tok.decode(it.greedy_ids), it.text).toBe(it.greedy_text);
      }
    });

    it(`round-trips the expected texts of ${name}, matching the greedy ids where the model is right`, () => {
      for (const it of items) {
        const ids = tok.encodeTarget(it.expected);
        expect(ids.length).toBe([...it.expected].length);
        expect(tok.decode(ids)).toBe(it.expected);
        if (it.greedy_text === it.expected) expect(ids).toEqual(it.greedy_ids);
      }
    });
  }

  it('refuses a character the numbers model does not know, naming it and where it is', () => {
    const message = errorOf(() => tok.encode('12a4'), 'BAD_INPUT');
    expect(message).toContain('"a"');
    expect(message).toContain('position 2');
  });
});

describe('CharTokenizer', () => {
  it('adds bos and eos to the source as tokenizer.json says', () => {
    expect(CharTokenizer.fromJSON(tiny()).encode('ab')).toEqual([4, 5, 2]);
    expect(CharTokenizer.fromJSON(tiny({ src_add_bos: true, src_add_eos: false })).encode('ab')).toEqual([1, 4, 5]);
    expect(CharTokenizer.fromJSON(tiny()).encode('')).toEqual([2]);
  });

  it('counts characters as code points, in ids and in error positions', () => {
    const tok = CharTokenizer.fromJSON(tiny());
    expect(tok.encode('😀a😀')).toEqual([3, 4, 3, 2]);
    const message = errorOf(() => tok.encode('😀a\tb'), 'BAD_INPUT');
    expect(message).toContain('position 2');
    expect(message).toContain('U+0009');
  });

  it('maps unknown source characters to unk_id when there is one', () => {
    const json = tiny({ src_vocab: ['<pad>', '<bos>', '<eos>', '<unk>', 'a'], unk_id: 3 });
    expect(CharTokenizer.fromJSON(json).encode('a?a')).toEqual([4, 3, 4, 2]);
  });

  it('decodes targets up to the first eos, skipping bos and pad', () => {
    const tok = CharTokenizer.fromJSON(tiny());
    expect(tok.decode([1, 3, 5, 4, 0, 2, 3])).toBe('x y');
    expect(tok.decode(new Int32Array([3, 3]))).toBe('xx');
    expect(tok.decode([])).toBe('');
    expect(errorOf(() => tok.decode([3, 6]), 'BAD_INPUT')).toContain('target id 6 at position 1');
    expect(errorOf(() => tok.decode([3, -1]), 'BAD_INPUT')).toContain('target id -1');
    expect(errorOf(() => tok.encodeTarget('xz'), 'BAD_INPUT')).toContain('"z"');
  });

  it('parses tokenizer.json text as well as a parsed object', () => {
    expect(CharTokenizer.fromJSON(JSON.stringify(tiny())).encode('b')).toEqual([5, 2]);
    expect(errorOf(() => CharTokenizer.fromJSON('{"type":', 'm/tokenizer.json'), 'BAD_CONFIG')).toContain('m/tokenizer.json: not valid JSON');
    expect(errorOf(() => CharTokenizer.fromJSON([], 'm/tokenizer.json'), 'BAD_CONFIG')).toBe('m/tokenizer.json: must be a JSON object, got []');
  });

  const broken: [string, Record<string, unknown>][] = [
    ['type', { type: 'bpe' }],
    ['src_vocab', { src_vocab: undefined }],
    ['tgt_vocab', { tgt_vocab: [] }],
    ['src_vocab', { src_vocab: ['<pad>', '<bos>', '<eos>', 7] }],
    ['src_vocab"[4]', { src_vocab: ['<pad>', '<bos>', '<eos>', 'a', 'bc'] }],
    ['tgt_vocab"[4]', { tgt_vocab: ['<pad>', '<bos>', '<eos>', 'x', 'x'] }],
    ['pad_id', { pad_id: 1.5 }],
    ['bos_id', { bos_id: '1' }],
    ['eos_id', { eos_id: 6 }], // inside neither vocabulary (both have 6 entries)
    ['eos_id', { eos_id: 0 }],
    ['unk_id', { unk_id: undefined }],
    ['unk_id', { unk_id: 2 }],
    ['src_add_bos', { src_add_bos: 'no' }],
    ['src_add_eos', { src_add_eos: undefined }],
  ];
  for (const [field, override] of broken) {
    it(`rejects a bad "${field} as BAD_CONFIG naming the file and the field (${JSON.stringify(override)})`, () => {
      const message = errorOf(() => CharTokenizer.fromJSON(tiny(override), 'models/x/tokenizer.json'), 'BAD_CONFIG');
      expect(message).toContain('models/x/tokenizer.json');
      expect(message).toContain(`"${field}`);
    });
  }
});
