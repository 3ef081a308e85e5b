import type { ByteTrie } from './byte-trie.js';
import type { CharsMap } from './charsmap.js';
import type { NormalizerSpec } from './spm-proto.js';
import { REPLACEMENT, SPACE_SYMBOL, validCharLen } from './utf8.js';

/** A growable byte buffer: the normalizer's output. */
class ByteBuilder {
  bytes: Uint8Array;
  length = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(Math.max(16, capacity));
  }

  append(src: Uint8Array, start: number, end: number): void {
    this.reserve(end - start);
    this.bytes.set(src.subarray(start, end), this.length);
    this.length += end - start;
  }

  push(byte: number): void {
    this.reserve(1);
    this.bytes[this.length++] = byte;
  }

  endsWith(suffix: Uint8Array): boolean {
    if (this.length < suffix.length) return false;
    for (let i = 0; i < suffix.length; i++) if (this.bytes[this.length - suffix.length + i] !== suffix[i]) return false;
    return true;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}

/** What one step of normalization makes of a prefix of the input: `out[start, end)`. */
interface Step {
  out: Uint8Array;
  start: number;
  end: number;
}

/**
 * sentencepiece's Normalizer, on UTF-8 bytes: each prefix of the input is a user-defined symbol
 * (kept as it is), else the longest charsmap rule, else one character; then extra whitespace is
 * removed, spaces escaped to U+2581 and the dummy prefix (or suffix) added, as the spec says.
 */
export class Normalizer {
  constructor(
    private readonly spec: NormalizerSpec,
    private readonly charsMap: CharsMap | null,
    /** whitespace goes after words (TrainerSpec.treat_whitespace_as_suffix); a denormalizer has none */
    private readonly whitespaceAsSuffix: boolean,
    /** user-defined symbols, matched before the rules (a denormalizer has none) */
    private readonly userSymbols: ByteTrie | null,
  ) {}

  /** The normalized form of `input` (UTF-8). */
  normalize(input: Uint8Array): Uint8Array {
    const spec = this.spec;
    const end = input.length;
    const step: Step = { out: input, start: 0, end: 0 };
    let pos = 0;
    if (spec.removeExtraWhitespaces) {
      // Leading whitespace: every prefix that normalizes to exactly one space.
      while (pos < end) {
        const n = this.prefix(input, pos, step);
        if (step.end - step.start !== 1 || step.out[step.start] !== 0x20) break;
        pos += n;
      }
    }
    if (pos === end) return new Uint8Array(0);
    const out = new ByteBuilder(3 * (end - pos) + 8);
    if (!this.whitespaceAsSuffix && spec.addDummyPrefix) this.space(out);
    let prevSpace = spec.removeExtraWhitespaces;
    while (pos < end) {
      pos += this.prefix(input, pos, step);
      let s = step.start;
      if (prevSpace) while (s < step.end && step.out[s] === 0x20) s++;
      if (s < step.end) {
        this.appendEscaped(out, step.out, s, step.end);
        prevSpace = step.out[step.end - 1] === 0x20;
      }
      if (!spec.removeExtraWhitespaces) prevSpace = false;
    }
    if (spec.removeExtraWhitespaces) {
      const space = spec.escapeWhitespaces ? SPACE_SYMBOL : ASCII_SPACE;
      while (out.endsWith(space)) out.length -= space.length;
    }
    if (this.whitespaceAsSuffix && spec.addDummyPrefix) this.space(out);
    return out.bytes.slice(0, out.length);
  }

  /** Normalizes the prefix at input[pos]: sets `step` to its output and returns how many bytes it consumed. */
  private prefix(input: Uint8Array, pos: number, step: Step): number {
    const end = input.length;
    const symbol = this.userSymbols ? this.userSymbols.longestPrefix(input, pos, end) : 0;
    if (symbol > 0) return setStep(step, input, pos, pos + symbol, symbol);
    const rule = this.charsMap ? this.charsMap.match(input, pos, end) : 0;
    if (rule > 0) return setStep(step, this.charsMap!.replacement, 0, this.charsMap!.replacement.length, rule);
    const n = validCharLen(input, pos, end);
    // A malformed byte becomes U+FFFD and only that byte is consumed.
    return n === 0 ? setStep(step, REPLACEMENT, 0, 3, 1) : setStep(step, input, pos, pos + n, n);
  }

  private appendEscaped(out: ByteBuilder, src: Uint8Array, start: number, end: number): void {
    if (!this.spec.escapeWhitespaces) return out.append(src, start, end);
    for (let i = start; i < end; i++) {
      if (src[i] === 0x20) out.append(SPACE_SYMBOL, 0, 3);
      else out.push(src[i]);
    }
  }

  /** Adds one (escaped) space. */
  private space(out: ByteBuilder): void {
    if (this.spec.escapeWhitespaces) out.append(SPACE_SYMBOL, 0, 3);
    else out.push(0x20);
  }
}

const ASCII_SPACE = Uint8Array.of(0x20);

function setStep(step: Step, out: Uint8Array, start: number, end: number, consumed: number): number {
  step.out = out;
  step.start = start;
  step.end = end;
  return consumed;
}
