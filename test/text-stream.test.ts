// TextStream: the pieces of a decoding's text as its ids arrive. Over fake tokenizers whose
// decode rewrites earlier text as transformers' clean-up does (" ," -> ","), or ends inside a
// character: every prefix of pieces given out stays a prefix of the final text, and the pieces
// with flush() join to it.
import { describe, expect, it } from 'vitest';
import { TextStream } from '../dist/index.js';
import { cleanUpTokenization } from '../dist/tokenizers/added-tokens.js';

/** A tokenizer whose ids index `pieces`, decoded by joining them and cleaning the text up. */
const cleaned = (pieces: string[]) => ({ decode: (ids: readonly number[]) => cleanUpTokenization(ids.map((i) => pieces[i]).join('')) });

/** A tokenizer whose ids are UTF-8 bytes. */
const bytes = { decode: (ids: readonly number[]) => new TextDecoder().decode(Uint8Array.from(ids)) };

/**
 * Pushes `ids`, checking after each that what was given is a prefix of the final text and holds
 * back at most `held` characters of the text so far; returns the pieces and flush().
 */
function run(tokenizer: { decode(ids: readonly number[]): string }, ids: number[], held = 3): { pushed: string[]; rest: string; whole: string } {
  const whole = tokenizer.decode(ids);
  const stream = new TextStream(tokenizer);
  const pushed: string[] = [];
  ids.forEach((id, i) => {
    pushed.push(stream.push(id));
    const given = pushed.join('');
    expect(whole.startsWith(given)).toBe(true);
    expect(tokenizer.decode(ids.slice(0, i + 1)).length - given.length).toBeLessThanOrEqual(held);
  });
  return { pushed, rest: stream.flush(), whole };
}

describe('TextStream', () => {
  it('holds back a space the clean-up may still remove, and joins to the cleaned text', () => {
    // Split as SentencePiece splits: the space comes with the piece after it, so a clean-up
    // pattern may span pieces (" n" then "'t": "I do n" becomes "I don't").
    for (const words of [
      ['Hello', ' ,', ' world', ' .'],
      ['I', ' do', ' n', "'t", ' know', ' ', '!'],
      ['a', ' ', "'", ' b', ' c'],
      ['It', ' ', "'", 's', ' a', ' ', "' ", 'b'],
      ['we', ' ', "'", 're', ' here', ' ', '.'],
      ['no', ' clean-up', ' here'],
    ]) {
      const { pushed, rest, whole } = run(cleaned(words), words.map((_, i) => i));
      expect(pushed.join('') + rest).toBe(whole);
    }
  });

  it('gives text as it comes when nothing can change it', () => {
    const { pushed, rest } = run(cleaned(['abc', 'def', 'ghi']), [0, 1, 2]);
    expect(pushed).toEqual(['abc', 'def', 'ghi']);
    expect(rest).toBe('');
  });

  it('waits for the rest of a character, and flushes a final U+FFFD', () => {
    const euro = [0xe2, 0x82, 0xac];
    const done = run(bytes, [0x61, ...euro, 0x62], 1);
    expect(done.pushed).toEqual(['a', '', '', '€', 'b']);
    const cut = run(bytes, [0x61, ...euro.slice(0, 2)], 1);
    expect(cut.pushed.join('')).toBe('a');
    expect(cut.rest).toBe('\ufffd');
    expect(cut.pushed.join('') + cut.rest).toBe(cut.whole);
  });

  it('goes on after what was given when a later id rewrites it in another way', () => {
    const texts = ['ab', 'xbcd', 'xbcdef', 'xbcdefgh'];
    const stream = new TextStream({ decode: (ids) => texts[ids.length - 1] });
    expect([0, 1, 2, 3].map((id) => stream.push(id))).toEqual(['ab', 'cd', 'ef', 'gh']);
    expect(stream.flush()).toBe('');
  });
});
