import { describe, expect, it } from 'vitest';
import { CharsMap } from '../../dist/tokenizers/charsmap.js';
import { errorOf } from '../expect-error.js';
import { charsmapOf, readJson } from './read-fixtures.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** The rule `map` applies to the start of `text`: [key length in bytes, replacement]. */
function lookup(map: CharsMap, text: string): [number, string] {
  const b = encoder.encode(text);
  const n = map.match(b, 0, b.length);
  return [n, n > 0 ? decoder.decode(map.replacement) : ''];
}

// What sentencepiece's Decompile() lists (tools/make_tokenizer_fixtures.py).
const RULES = readJson('charsmaps.json');

describe.each([
  ['nmt_nfkc', 'unigram-nfkc-shared/source.spm'],
  ['nmt_nfkc_cf', 'bpe-bytes-separate/source.spm'],
])('CharsMap of %s (%s)', (name, file) => {
  const map = CharsMap.parse(charsmapOf(file), file);
  const single: Record<string, string> = RULES[name].single;

  it('has exactly the rules sentencepiece lists for every code point alone', () => {
    expect(Object.keys(single).length).toBeGreaterThan(5000);
    let matched = 0;
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp < 0xe000) continue;
      const ch = String.fromCodePoint(cp);
      const [n, out] = lookup(map, ch);
      const want = single[ch];
      if (want === undefined) {
        if (n !== 0) expect.fail(`U+${cp.toString(16)} has a rule (${JSON.stringify(out)}) sentencepiece does not list`);
        continue;
      }
      if (n !== encoder.encode(ch).length || out !== want) expect.fail(`U+${cp.toString(16)}: got ${n} ${JSON.stringify(out)}, want ${JSON.stringify(want)}`);
      matched++;
    }
    expect(matched).toBe(Object.keys(single).length);
  });

  it('has the longer rules of a seeded sample, each matched whole', () => {
    const longer: [string, string][] = RULES[name].longer;
    expect(longer.length).toBe(800);
    for (const [key, want] of longer) expect(lookup(map, key), JSON.stringify(key)).toEqual([encoder.encode(key).length, want]);
  });

  it('matches the longest rule that prefixes the input, and nothing past `end`', () => {
    // "e" + combining acute is one rule (é), "e" alone none: with the mark cut off by `end`, no match.
    const b = encoder.encode('e\u0301Ａ');
    expect(map.match(b, 0, b.length)).toBe(3);
    expect(decoder.decode(map.replacement)).toBe('é');
    expect(map.match(b, 0, 1)).toBe(0);
    expect(map.match(b, 1, b.length)).toBe(0); // the mark alone has no rule
    expect(map.match(b, 3, b.length)).toBe(3); // full-width A, at an offset
    expect(decoder.decode(map.replacement)).toBe(name === 'nmt_nfkc' ? 'A' : 'a');
    expect(map.match(b, 3, 5)).toBe(0);
  });
});

describe('CharsMap of the user-defined rule TSV', () => {
  const file = 'rules-suffix-separate/source.spm';
  const map = CharsMap.parse(charsmapOf(file), file);

  it('has every rule sentencepiece lists, deletions included', () => {
    const rules: [string, string][] = RULES.user_defined.rules;
    expect(rules.length).toBe(RULES.user_defined.count);
    expect(rules).toContainEqual(['\u00ad', '']);
    for (const [key, want] of rules) expect(lookup(map, key), JSON.stringify(key)).toEqual([encoder.encode(key).length, want]);
  });

  it('prefers the longest key: <<< over <<, and nothing for <', () => {
    expect(lookup(map, '<<<<')).toEqual([3, '‹']);
    expect(lookup(map, '<<x')).toEqual([2, '«']);
    expect(lookup(map, '<x')).toEqual([0, '']);
    expect(lookup(map, 'A')).toEqual([1, 'a']);
    expect(lookup(map, 'B')).toEqual([0, '']);
  });

  it('refuses a blob whose replacements are cut off or not UTF-8, naming the field', () => {
    const blob = charsmapOf(file);
    const where = 'x.spm: normalizer_spec.precompiled_charsmap';
    const cut = errorOf(() => CharsMap.parse(blob.subarray(0, blob.length - 3), where), 'BAD_FILE');
    expect(cut).toMatch(/^x\.spm: normalizer_spec\.precompiled_charsmap: trie unit \d+ points at byte \d+, past the last NUL-terminated replacement$/);
    const trieBytes = new DataView(blob.buffer, blob.byteOffset).getUint32(0, true);
    const broken = blob.slice();
    broken[4 + trieBytes] = 0xff; // the first replacement's first byte
    expect(errorOf(() => CharsMap.parse(broken, where), 'BAD_FILE')).toMatch(/^x\.spm: normalizer_spec\.precompiled_charsmap: the replacement at byte 0 \(trie unit \d+\) is not UTF-8$/);
  });

  it('reads an empty trie as no rules', () => {
    const map = CharsMap.parse(Uint8Array.of(0, 0, 0, 0, 0), 'x');
    expect(map.match(encoder.encode('abc'), 0, 3)).toBe(0);
  });
});
