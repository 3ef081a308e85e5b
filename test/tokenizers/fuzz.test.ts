// Seeded fuzzing of the tokenizer files: thousands of mutated .spm files, charsmaps, vocab.json
// and tokenizer_config.json. Each must either load (and then encode and decode without any
// other error) or be refused with a WasmformerError; none may hang.
import { describe, expect, it } from 'vitest';
import { WasmformerError } from '../../dist/errors.js';
import { CharsMap } from '../../dist/tokenizers/charsmap.js';
import { MarianTokenizer } from '../../dist/tokenizers/marian.js';
import { SentencePieceProcessor } from '../../dist/tokenizers/sentencepiece.js';
import { random, type Rand } from '../helpers.js';
import { bytes, charsmapOf, marianFiles, STRINGS } from './read-fixtures.js';
import { concat } from './proto-writer.js';

const SAMPLE = STRINGS.filter((_, i) => i % 9 === 0).concat(['', ' ', 'a', '☃ x', '>>de<< </s> <unk>']);

/** One random edit of a file: a bit flip, a byte set, a cut, an insertion, a deletion, a copied range; within [from, to) when given. */
function mutate(file: Uint8Array, r: Rand, from = 0, to = file.length): Uint8Array {
  const at = from + r.int(Math.max(1, to - from));
  switch (r.int(7)) {
    case 0: {
      const out = file.slice();
      out[at] ^= 1 << r.int(8);
      return out;
    }
    case 1: {
      const out = file.slice();
      out[at] = r.pick([0, 1, 0x7f, 0x80, 0xff, r.int(256)]);
      return out;
    }
    case 2:
      return file.slice(0, at);
    case 3: {
      const junk = Uint8Array.from({ length: 1 + r.int(6) }, () => r.pick([0, 0x80, 0xff, 0x0a, 0x12, r.int(256)]));
      return concat(file.subarray(0, at), junk, file.subarray(at));
    }
    case 4:
      return concat(file.subarray(0, at), file.subarray(Math.min(file.length, at + 1 + r.int(16))));
    case 5: {
      const len = 1 + r.int(32);
      return concat(file.subarray(0, at), file.subarray(at, at + len), file.subarray(at));
    }
    default: {
      // A varint length or tag nearby grows or shrinks by one.
      const out = file.slice();
      out[at] = (out[at] + r.pick([1, 255])) & 0xff;
      return out;
    }
  }
}

/** Runs f; a WasmformerError is an outcome (its code), any other exception fails the test. */
function outcome(f: () => void): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof WasmformerError) return e.code;
    throw e;
  }
}

/** Loads a mutated model and, when it loads, uses all of it. */
function exercise(file: Uint8Array, r: Rand): string {
  let sp: SentencePieceProcessor;
  const loaded = outcome(() => {
    sp = SentencePieceProcessor.fromBytes(file, 'fuzz.spm');
  });
  if (loaded !== 'ok') return loaded;
  for (const s of SAMPLE) {
    outcome(() => {
      const { pieces, ids } = sp.encode(s);
      sp.decodeIds(ids);
      sp.decodePieces(pieces);
      sp.normalize(s);
    });
  }
  outcome(() => sp.decodeIds(Array.from({ length: 20 }, () => r.int(sp.size))));
  return 'loaded';
}

describe('fuzzed .spm files', () => {
  it.each([
    ['unigram, identity, user-defined, byte fallback', 'unigram-identity-userdef/source.spm', 700],
    ['BPE, byte fallback', 'bpe-bytes-separate/target.spm', 600],
    ['unigram, rule TSV and denormalizer', 'rules-suffix-separate/source.spm', 600],
    ['unigram, nmt_nfkc', 'unigram-nfkc-shared/source.spm', 200],
  ])('%s: every mutation loads or is refused with a WasmformerError', (_, path, count) => {
    const file = bytes(path);
    const r = random(path.length * 7919);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < count; i++) {
      const result = exercise(mutate(file, r), r);
      outcomes.set(result, (outcomes.get(result) ?? 0) + 1);
    }
    // Both happen: some edits leave a valid model (a score, a piece's text), most do not.
    expect(outcomes.get('loaded') ?? 0).toBeGreaterThan(0);
    expect(outcomes.get('BAD_FILE') ?? 0).toBeGreaterThan(0);
    expect([...outcomes.keys()].every((k) => k === 'loaded' || k === 'BAD_FILE')).toBe(true);
  });

  it('mutations inside the charsmap (its trie and replacements) parse or are refused', () => {
    const file = bytes('unigram-nfkc-shared/source.spm');
    const blob = charsmapOf('unigram-nfkc-shared/source.spm');
    const start = blob.byteOffset; // the blob is a view into a copy of the same file
    expect(file.subarray(start, start + blob.length)).toEqual(blob);
    const r = random(4242);
    let loaded = 0;
    for (let i = 0; i < 150; i++) {
      // Several edits at once, only inside the blob, keeping the file's length (so every length prefix stays right).
      let edited = file;
      for (let k = 0; k < 1 + r.int(4); k++) {
        const out = edited.slice();
        const at = start + r.int(blob.length);
        out[at] = r.int(4) === 0 ? r.int(256) : out[at] ^ (1 << r.int(8));
        edited = out;
      }
      if (exercise(edited, r) === 'loaded') loaded++;
    }
    expect(loaded).toBeGreaterThan(0);
  });

  it('a charsmap trie of random units never reads outside its arrays', () => {
    const r = random(99);
    const good = charsmapOf('rules-suffix-separate/source.spm');
    let parsed = 0;
    for (let i = 0; i < 300; i++) {
      const blob = good.slice();
      for (let k = 0; k < 1 + r.int(30); k++) blob[4 + r.int(blob.length - 4)] = r.int(256);
      let map: CharsMap | undefined;
      if (outcome(() => (map = CharsMap.parse(blob, 'fuzz'))) !== 'ok') continue;
      parsed++;
      for (let k = 0; k < 20; k++) {
        const input = Uint8Array.from({ length: 1 + r.int(8) }, () => r.pick([0x3c, 0x41, 0xc3, 0x9f, 0xe2, 0x80, 0xa6, r.int(256)]));
        const n = map!.match(input, 0, input.length);
        expect(n).toBeGreaterThanOrEqual(0);
        expect(n).toBeLessThanOrEqual(input.length);
        if (n > 0) expect(map!.replacement.includes(0)).toBe(false);
      }
    }
    expect(parsed).toBeGreaterThan(0); // some mutated tries parse, so the matching above ran
  });
});

describe('fuzzed vocab.json and tokenizer_config.json', () => {
  const files = marianFiles('rules-suffix-separate');
  const WEIRD: unknown[] = [null, true, 0, -1, 1.5, 2 ** 40, '', 'x', '</s>', [], {}, ['<x>'], { content: '<x>' }, { __type: 'AddedToken', content: '<y>' }];
  const CONFIG_KEYS = ['separate_vocabs', 'clean_up_tokenization_spaces', 'split_special_tokens', 'unk_token', 'eos_token', 'pad_token', 'bos_token', 'mask_token', 'my_token', 'extra_special_tokens', 'additional_special_tokens', 'added_tokens_decoder', 'sp_model_kwargs'];

  it('every edited config and vocabulary loads (and then encodes and decodes) or is refused with a WasmformerError', () => {
    const r = random(31337);
    const baseConfig = JSON.parse(files.tokenizerConfig as string);
    const baseVocab = JSON.parse(files.vocab as string) as Record<string, unknown>;
    const pieces = Object.keys(baseVocab);
    const codes = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const config = structuredClone(baseConfig);
      const vocab = { ...baseVocab };
      for (let k = 0; k < 1 + r.int(3); k++) {
        if (r.int(2)) config[r.pick(CONFIG_KEYS)] = r.pick(WEIRD);
        else if (r.int(2)) vocab[r.pick(pieces)] = r.pick(WEIRD);
        else delete vocab[r.pick(pieces)];
      }
      if (r.int(4) === 0) config.added_tokens_decoder = { [String(r.int(900))]: { content: r.pick(['<q>', '</s>', 'a', '']), lstrip: r.int(2) === 1, single_word: r.int(2) === 1 } };
      const code = outcome(() => {
        const tok = MarianTokenizer.fromFiles({ ...files, tokenizerConfig: r.int(5) === 0 ? JSON.stringify(config).slice(0, -2) : config, vocab });
        for (const s of SAMPLE) tok.decode(tok.encodeTarget(s).filter((id) => id < tok.tgtVocabSize));
      });
      codes.add(code);
    }
    expect(codes.has('ok')).toBe(true);
    expect(codes.has('BAD_CONFIG')).toBe(true);
    // BAD_INPUT: a vocabulary with an entry deleted has ids that are no token.
    expect([...codes].every((c) => ['ok', 'BAD_CONFIG', 'UNSUPPORTED', 'BAD_INPUT'].includes(c))).toBe(true);
  });
});
