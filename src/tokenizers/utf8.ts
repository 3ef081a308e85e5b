import { WasmformerError } from '../errors.js';
import { describe } from '../io/describe.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** U+FFFD in UTF-8: what sentencepiece writes for a byte that starts no valid character. */
export const REPLACEMENT = Uint8Array.of(0xef, 0xbf, 0xbd);

/** U+2581 (LOWER ONE EIGHTH BLOCK) in UTF-8: sentencepiece's escaped space. */
export const SPACE_SYMBOL = Uint8Array.of(0xe2, 0x96, 0x81);

/** The length a UTF-8 lead byte announces, as sentencepiece's OneCharLen (a stray continuation byte counts 1). */
function oneCharLen(lead: number): number {
  return lead < 0xc0 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}

/** The length of the character at text[pos], cut at the end of the text (sentencepiece's min(OneCharLen, rest)). */
export function charLen(text: Uint8Array, pos: number): number {
  return Math.min(oneCharLen(text[pos]), text.length - pos);
}

/**
 * The length of the character at bytes[pos] if it is valid UTF-8 as sentencepiece's DecodeUTF8
 * judges it (shortest form, no surrogate, at most U+10FFFF, not cut by `end`), else 0.
 */
export function validCharLen(bytes: Uint8Array, pos: number, end: number): number {
  const b0 = bytes[pos];
  if (b0 < 0x80) return 1;
  const n = b0 >= 0xc0 && b0 < 0xe0 ? 2 : b0 >= 0xe0 && b0 < 0xf0 ? 3 : b0 >= 0xf0 && b0 < 0xf8 ? 4 : 0;
  if (n === 0 || end - pos < n) return 0;
  let cp = b0 & (0x7f >> n);
  for (let i = 1; i < n; i++) {
    const b = bytes[pos + i];
    if ((b & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  const min = n === 2 ? 0x80 : n === 3 ? 0x800 : 0x10000;
  return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000) ? 0 : n;
}

/** Whether bytes[start, end) is valid UTF-8 throughout. */
export function isValidUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  for (let pos = start; pos < end; ) {
    const n = validCharLen(bytes, pos, end);
    if (n === 0) return false;
    pos += n;
  }
  return true;
}

/**
 * Refuses (BAD_ARGUMENT) a text argument that is not a string or holds a lone surrogate, which
 * UTF-8 cannot carry (Python's sentencepiece refuses such a str too).
 */
export function checkText(text: unknown, what: string): asserts text is string {
  if (typeof text !== 'string') throw new WasmformerError('BAD_ARGUMENT', `${what} must be a string, got ${describe(text)}`);
  const lone = /\p{Cs}/u.exec(text);
  if (lone) {
    const hex = text.charCodeAt(lone.index).toString(16).toUpperCase();
    throw new WasmformerError('BAD_ARGUMENT', `${what} has a lone surrogate U+${hex} at index ${lone.index}, which is not Unicode text`);
  }
}

/** A checked text argument (see checkText) as UTF-8. */
export function textToUtf8(text: unknown, what: string): Uint8Array {
  checkText(text, what);
  return encoder.encode(text);
}

/** A string as UTF-8 (lone surrogates become U+FFFD, as TextEncoder does). */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** UTF-8 bytes as a string (invalid bytes become U+FFFD). */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** bytes[start, end) as a string of one char per byte: a cheap, exact key for maps of byte strings. */
export function byteKey(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let key = '';
  for (let i = start; i < end; i += 4096) {
    key += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return key;
}
