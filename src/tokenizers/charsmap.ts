import { WasmformerError } from '../errors.js';
import { isValidUtf8 } from './utf8.js';

/**
 * sentencepiece's precompiled_charsmap: a 4-byte little-endian trie size, a Darts-clone double
 * array of that many bytes (32-bit units) over the UTF-8 keys of the normalization rules, then
 * the NUL-terminated replacements the trie's leaves point into. `match` finds the longest rule
 * that prefixes the input, as Normalizer::NormalizePrefix does.
 */
export class CharsMap {
  /** The replacement of the rule `match` found last (a view into the blob). */
  replacement: Uint8Array = new Uint8Array(0);

  private constructor(
    private readonly units: Uint32Array,
    private readonly normalized: Uint8Array,
  ) {}

  /**
   * Reads a charsmap blob; `where` names the file and field for errors. Every leaf must point at
   * a NUL-terminated UTF-8 replacement, so no match can read past the blob.
   */
  static parse(blob: Uint8Array, where: string): CharsMap {
    const bad = (why: string) => new WasmformerError('BAD_FILE', `${where}: ${why}`);
    if (blob.length <= 4) throw bad(`${blob.length} bytes cannot hold a trie size and a trie`);
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieBytes = view.getUint32(0, true);
    if (trieBytes > blob.length - 4) throw bad(`trie size ${trieBytes} exceeds the ${blob.length - 4} bytes after it`);
    const units = new Uint32Array(trieBytes >>> 2);
    for (let i = 0; i < units.length; i++) units[i] = view.getUint32(4 + 4 * i, true);
    const normalized = blob.subarray(4 + trieBytes);
    const map = new CharsMap(units, normalized);
    map.checkLeaves(bad);
    return map;
  }

  /**
   * The length of the longest rule key that prefixes bytes[pos, end) (0: none); on a match,
   * `replacement` holds that rule's output.
   */
  match(bytes: Uint8Array, pos: number, end: number): number {
    const units = this.units;
    if (units.length === 0) return 0;
    let node = offset(units[0]);
    let longest = 0;
    let value = 0;
    for (let i = pos; i < end; i++) {
      const c = bytes[i];
      node ^= c;
      if (node >= units.length) break;
      const unit = units[node];
      // A leaf's label has its top bit set, so it never equals a byte.
      if ((unit & 0x800000ff) !== c) break;
      node ^= offset(unit);
      if ((unit >>> 8) & 1) {
        if (node >= units.length) break;
        longest = i + 1 - pos;
        value = units[node] & 0x7fffffff;
      }
    }
    if (longest > 0) this.replacement = this.normalized.subarray(value, this.normalized.indexOf(0, value));
    return longest;
  }

  /** Every leaf unit (top bit set) must point at a NUL-terminated UTF-8 string of the tail. */
  private checkLeaves(bad: (why: string) => WasmformerError): void {
    const lastNul = this.normalized.lastIndexOf(0);
    for (let i = 0; i < this.units.length; i++) {
      if (this.units[i] >>> 31 === 0) continue;
      const value = this.units[i] & 0x7fffffff;
      if (value > lastNul) throw bad(`trie unit ${i} points at byte ${value}, past the last NUL-terminated replacement`);
      if (!isValidUtf8(this.normalized, value, this.normalized.indexOf(0, value))) {
        throw bad(`the replacement at byte ${value} (trie unit ${i}) is not UTF-8`);
      }
    }
  }
}

/** A unit's offset to its children: 22 bits, shifted left 8 when bit 9 is set (darts-clone's encoding). */
function offset(unit: number): number {
  return (unit >>> 10) << ((unit & 0x200) >>> 6);
}
