import { describe, expect, it } from 'vitest';
import { SentencePieceProcessor } from '../../dist/tokenizers/sentencepiece.js';
import { errorOf } from '../expect-error.js';
import { bytes, readJson, spm, SPM_MODELS, STRINGS, type SpmRecord } from './read-fixtures.js';
import { bField, concat, fField, modelProto, TYPE, vField, type PieceSpec } from './proto-writer.js';

describe.each(SPM_MODELS)('SentencePieceProcessor on %s (%s) against sentencepiece 0.2.2', (label, file, key) => {
  const want: SpmRecord = readJson(`${label}/expected.json`)[key];
  const sp = spm(file);

  it('has the same pieces and special ids', () => {
    expect(sp.size).toBe(want.size);
    expect([sp.unkId, sp.bosId, sp.eosId, sp.padId]).toEqual(want.unk_bos_eos_pad);
    expect(sp.normalizerName).toBe(want.normalizer);
  });

  it(`gives the same pieces and ids for all ${STRINGS.length} strings`, () => {
    expect(want.pieces.length).toBe(STRINGS.length);
    STRINGS.forEach((s, i) => {
      const got = sp.encode(s);
      expect(got.pieces, JSON.stringify(s)).toEqual(want.pieces[i]);
      expect(got.ids, JSON.stringify(s)).toEqual(want.ids[i]);
      expect(sp.encodeIds(s)).toEqual(want.ids[i]);
      expect(sp.encodePieces(s)).toEqual(want.pieces[i]);
    });
  });

  it('normalizes every string as sentencepiece does', () => {
    STRINGS.forEach((s, i) => expect(sp.normalize(s), JSON.stringify(s)).toBe(want.normalized[i]));
  });

  it('decodes the ids and the pieces of every string to the same text', () => {
    STRINGS.forEach((s, i) => {
      expect(sp.decodeIds(want.ids[i]), JSON.stringify(s)).toBe(want.decoded[i]);
      expect(sp.decodePieces(want.pieces[i]), JSON.stringify(s)).toBe(want.decoded_pieces[i] ?? want.decoded[i]);
    });
  });

  it('maps every piece to its id and back', () => {
    for (let id = 0; id < sp.size; id++) expect(sp.pieceToId(sp.idToPiece(id))).toBe(id);
    expect(sp.pieceToId('no such piece \u2603\u2603')).toBe(sp.unkId);
  });
});

describe('SentencePieceProcessor', () => {
  const sp = spm('unigram-nfkc-shared/source.spm');

  it('refuses a text that is not a string, or not Unicode', () => {
    expect(errorOf(() => sp.encodeIds(42 as unknown as string), 'BAD_ARGUMENT')).toBe('text must be a string, got 42');
    expect(errorOf(() => sp.encodePieces('ab\ud800c'), 'BAD_ARGUMENT')).toBe('text has a lone surrogate U+D800 at index 2, which is not Unicode text');
    expect(errorOf(() => sp.normalize(null as unknown as string), 'BAD_ARGUMENT')).toBe('text must be a string, got null');
  });

  it('refuses an id outside the vocabulary, naming the file and the position', () => {
    expect(errorOf(() => sp.decodeIds([5, 1000]), 'BAD_INPUT')).toBe('unigram-nfkc-shared/source.spm: id 1000 at position 1 is outside the vocabulary [0, 1000)');
    expect(errorOf(() => sp.idToPiece(-1), 'BAD_INPUT')).toBe('unigram-nfkc-shared/source.spm: id -1 at position 0 is outside the vocabulary [0, 1000)');
    expect(errorOf(() => sp.decodeIds([1.5]), 'BAD_INPUT')).toContain('id 1.5 at position 0');
  });

  it('refuses pieces that are not strings', () => {
    expect(errorOf(() => sp.decodePieces(['a', 3] as unknown as string[]), 'BAD_ARGUMENT')).toBe('pieces must be an array of strings, got ["a",3]');
  });

  it('decodes the <unk> piece as " \u2047 " and an unknown string as itself', () => {
    expect(sp.decodeIds([sp.unkId])).toBe(' \u2047 ');
    const word = Array.from({ length: sp.size }, (_, id) => sp.idToPiece(id)).find((p) => p.startsWith('\u2581') && p.length > 2)!;
    expect(sp.decodePieces([word, 'no-such-piece\u2581x', word])).toBe(`${word.slice(1)}no-such-piece\u2581x ${word.slice(1)}`);
  });

  it('encodes a long text in linear time', () => {
    const sentence = 'The quick brown fox jumps over the lazy dog, 1234 times: ﬁne, Ｆｕｌｌ ☃! ';
    // The best of three runs, so that a pause of the (shared) machine does not count.
    const time = (text: string) => {
      let best = Infinity;
      for (let run = 0; run < 3; run++) {
        const t0 = performance.now();
        sp.encodeIds(text);
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    const short = time(sentence.repeat(200));
    const long = time(sentence.repeat(2000));
    expect(long).toBeLessThan(2000);
    expect(long / Math.max(short, 1)).toBeLessThan(40); // 10x the text: quadratic would be 100x
    expect(time('a'.repeat(100_000)) + time('☃'.repeat(100_000)) + time(' '.repeat(100_000))).toBeLessThan(2000);
  });

  it('encodes a sentence in well under a millisecond', () => {
    const sentences = STRINGS.filter((s) => s.length > 20 && s.length < 120);
    for (const s of sentences) sp.encodeIds(s);
    const t0 = performance.now();
    for (let round = 0; round < 5; round++) for (const s of sentences) sp.encodeIds(s);
    expect((performance.now() - t0) / (5 * sentences.length)).toBeLessThan(0.5);
  });
});

/** A tiny hand-made model: <unk>, the letters a to c and "ab", plus `extra`. */
function tiny(extra: PieceSpec[] = [], trainer: Uint8Array[] = [], normalizer: Uint8Array[] = []): Uint8Array {
  const pieces: PieceSpec[] = [
    { piece: '<unk>', type: TYPE.unknown },
    { piece: '\u2581', score: -1 },
    { piece: 'a', score: -2 },
    { piece: 'b', score: -2 },
    { piece: 'c', score: -2 },
    { piece: 'ab', score: -1 },
    ...extra,
  ];
  return modelProto(pieces, trainer, normalizer);
}

function load(model: Uint8Array): SentencePieceProcessor {
  return SentencePieceProcessor.fromBytes(model, 'm.spm');
}

describe('SentencePieceProcessor on hand-made models', () => {
  it('reads a model with no normalizer rules, defaults filled in', () => {
    const sp = load(tiny());
    expect(sp.encodePieces('ab  c')).toEqual(['\u2581', 'ab', '\u2581', 'c']);
    expect(sp.decodeIds(sp.encodeIds('ab  c'))).toBe('ab c');
    expect([sp.unkId, sp.bosId, sp.eosId, sp.padId]).toEqual([0, -1, -1, -1]);
  });

  it('reads BPE, WORD and CHAR model types', () => {
    const bpe = load(tiny([], [vField(3, 2)]));
    expect(bpe.encodePieces('abc')).toEqual(['\u2581', 'ab', 'c']);
    const word = load(tiny([{ piece: '\u2581ab' }], [vField(3, 3)]));
    expect(word.encodePieces('ab abc')).toEqual(['\u2581ab', '\u2581abc']);
    expect(word.encodeIds('ab abc')).toEqual([6, 0]);
    const char = load(tiny([{ piece: 'bc', type: TYPE.userDefined }], [vField(3, 4)]));
    expect(char.encodePieces('abcd')).toEqual(['\u2581', 'a', 'bc', 'd']);
  });

  it('keeps an unknown model type at the default, UNIGRAM, as protobuf keeps an unknown enum value out', () => {
    // Unigram takes the best total (a + bc), BPE the best merge first (ab, then nothing).
    const pieces = [{ piece: '<unk>', type: TYPE.unknown }, { piece: 'a', score: -0.1 }, { piece: 'b', score: -3 }, { piece: 'c', score: -5 }, { piece: 'ab', score: -0.1 }, { piece: 'bc', score: -0.2 }];
    const model = (type: number) => load(modelProto(pieces, [vField(3, type)], [vField(3, false)]));
    expect(model(1).encodePieces('abc')).toEqual(['a', 'bc']);
    expect(model(2).encodePieces('abc')).toEqual(['ab', 'c']);
    expect(model(9).encodePieces('abc')).toEqual(['a', 'bc']);
  });

  it('skips unknown fields and known ones of another wire type, as protobuf does', () => {
    const sp = load(concat(tiny([], [fField(3, 1), vField(999, 7)]), bField(77, 'x'), vField(3, 1)));
    expect(sp.encodePieces('abc')).toEqual(['\u2581', 'ab', 'c']);
  });

  it('merges runs of unknown characters, or spells them as bytes with byte_fallback', () => {
    expect(load(tiny()).encodePieces('a☃☃b')).toEqual(['\u2581', 'a', '☃☃', 'b']);
    const bytePieces = Array.from({ length: 256 }, (_, b) => ({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, type: TYPE.byte }));
    const sp = load(tiny(bytePieces, [vField(35, true)]));
    expect(sp.encodePieces('a☃')).toEqual(['\u2581', 'a', '<0xE2>', '<0x98>', '<0x83>']);
    expect(sp.decodePieces(['\u2581', 'a', '<0xE2>', '<0x98>', '<0x83>', '<0xE2>', 'b', '<0xFF>'])).toBe('a☃\ufffdb\ufffd');
  });

  it('refuses a control piece that segmentation finds in the text, as sentencepiece fails on it', () => {
    const withControl = load(modelProto([{ piece: '<unk>', type: TYPE.unknown }, { piece: 'x', type: TYPE.control }, { piece: '\u2581' }], [vField(3, 4)]));
    expect(errorOf(() => withControl.encodeIds('x'), 'BAD_INPUT')).toBe('m.spm: the text contains the control piece "x", which sentencepiece cannot encode either');
  });

  it('refuses malformed vocabularies, naming the piece', () => {
    expect(errorOf(() => load(modelProto([{ piece: 'a' }])), 'BAD_FILE')).toBe('m.spm: pieces: no piece of type UNKNOWN (<unk>)');
    expect(errorOf(() => load(tiny([{ piece: 'a' }])), 'BAD_FILE')).toBe('m.spm: pieces[6]: "a" is already defined (id 2)');
    expect(errorOf(() => load(tiny([{ piece: '' }])), 'BAD_FILE')).toBe('m.spm: pieces[6]: the piece is empty');
    expect(errorOf(() => load(tiny([{ piece: '<u2>', type: TYPE.unknown }])), 'BAD_FILE')).toBe('m.spm: pieces[6]: a second unknown piece (the first is id 0)');
    expect(errorOf(() => load(tiny([{ piece: '<0x41>', type: TYPE.byte }])), 'BAD_FILE')).toBe('m.spm: pieces[6]: byte piece "<0x41>" although trainer_spec.byte_fallback is false');
    expect(errorOf(() => load(tiny([{ piece: '<0x4g>', type: TYPE.byte }], [vField(35, true)])), 'BAD_FILE')).toBe('m.spm: pieces[6]: "<0x4g>" is of type BYTE but not named <0xXX>');
    expect(errorOf(() => load(tiny([{ piece: '<0x41>', type: TYPE.byte }], [vField(35, true)])), 'BAD_FILE')).toBe('m.spm: trainer_spec.byte_fallback is true but pieces lack byte <0x00>');
    expect(errorOf(() => load(modelProto([{ piece: '<unk>', type: TYPE.unknown }])), 'BAD_FILE')).toBe('m.spm: pieces: a unigram model needs at least one normal, user-defined or unused piece');
  });

  it('allows the same string as a control piece and a normal one, and finds the control one first', () => {
    const sp = load(tiny([{ piece: '<s>', type: TYPE.control }, { piece: '<s>' }]));
    expect(sp.pieceToId('<s>')).toBe(6);
    expect(sp.decodeIds([2, 7, 3])).toBe('ab');
  });

  it('refuses a broken charsmap, naming the field', () => {
    const charsmap = (blob: Uint8Array) => tiny([], [], [bField(2, blob)]);
    expect(errorOf(() => load(charsmap(Uint8Array.of(1, 0, 0))), 'BAD_FILE')).toBe('m.spm: normalizer_spec.precompiled_charsmap: 3 bytes cannot hold a trie size and a trie');
    expect(errorOf(() => load(charsmap(Uint8Array.of(9, 0, 0, 0, 1, 2, 3, 4))), 'BAD_FILE')).toBe('m.spm: normalizer_spec.precompiled_charsmap: trie size 9 exceeds the 4 bytes after it');
    const denormalizer = bField(5, [bField(2, Uint8Array.of(5, 0, 0, 0, 0))]);
    expect(errorOf(() => load(concat(tiny(), denormalizer)), 'BAD_FILE')).toBe('m.spm: denormalizer_spec.precompiled_charsmap: trie size 5 exceeds the 1 bytes after it');
  });

  it('refuses a file that is not a ModelProto, naming the file and the byte', () => {
    expect(errorOf(() => load(Uint8Array.of(0x0a, 0x05, 0x0a)), 'BAD_FILE')).toBe('m.spm: truncated: a field of 5 bytes at byte 2 runs past the end of its message (byte 3)');
    expect(errorOf(() => load(new TextEncoder().encode('<html>')), 'BAD_FILE')).toBe('m.spm: an end-group tag without its group at byte 0');
    const badString = concat(bField(1, [bField(1, Uint8Array.of(0xff))]));
    expect(errorOf(() => load(badString), 'BAD_FILE')).toBe('m.spm: pieces[0]: the string at byte 3 is not UTF-8');
    const badVarint = concat(tiny(), bField(2, [Uint8Array.of(0x18, 0x80, 0x80)]));
    expect(errorOf(() => load(badVarint), 'BAD_FILE')).toMatch(/^m\.spm: trainer_spec: truncated: the varint at byte \d+ runs past the end of its message$/);
    expect(errorOf(() => SentencePieceProcessor.fromBytes('x' as unknown as Uint8Array, 'source.spm'), 'BAD_ARGUMENT')).toBe('source.spm: expected the file\'s bytes as a Uint8Array, got "x"');
  });

  it('refuses a truncated real model, naming the file', () => {
    const real = bytes('bpe-bytes-separate/source.spm');
    const message = errorOf(() => SentencePieceProcessor.fromBytes(real.subarray(0, real.length - 100), 'source.spm'), 'BAD_FILE');
    expect(message).toMatch(/^source\.spm(\.[a-z_\[\]0-9]+)?: truncated: /);
  });
});
