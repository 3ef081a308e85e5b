/**
 * A trie over byte strings with an integer value per key: sentencepiece's piece and symbol
 * look-ups. Its edges live in one open-addressing hash table of typed arrays, so a vocabulary
 * of 250 000 pieces builds without an object per node.
 */
export class ByteTrie {
  /** edge keys (node * 256 + byte, exact in a double however many nodes), -1 where free */
  private keys: Float64Array;
  /** the child node of each edge */
  private children: Int32Array;
  private edges = 0;
  /** value per node, -1 where no key ends */
  private values: Int32Array;
  private nodes = 1;

  /** `bytes`: about how many key bytes will be added (the tables are sized for them at once). */
  constructor(bytes = 32) {
    const slots = 2 ** Math.ceil(Math.log2(Math.max(64, 2 * bytes)));
    this.keys = new Float64Array(slots).fill(-1);
    this.children = new Int32Array(slots);
    this.values = new Int32Array(Math.max(16, bytes)).fill(-1);
  }

  /** Adds the key bytes[start, end) with `value`, unless it is there: then returns its value (else -1) and changes nothing. */
  add(bytes: Uint8Array, value: number, start = 0, end = bytes.length): number {
    let node = 0;
    for (let i = start; i < end; i++) node = this.childOrNew(node, bytes[i]);
    if (this.values[node] >= 0) return this.values[node];
    this.values[node] = value;
    return -1;
  }

  /** The node reached from `node` by `byte`, or -1. The root is node 0. */
  child(node: number, byte: number): number {
    const key = node * 256 + byte;
    const mask = this.keys.length - 1;
    for (let slot = hash(node, byte) & mask; ; slot = (slot + 1) & mask) {
      const k = this.keys[slot];
      if (k === key) return this.children[slot];
      if (k === -1) return -1;
    }
  }

  /** The value of the key that ends at `node`, or -1. */
  value(node: number): number {
    return this.values[node];
  }

  /** The value of the key bytes[start, end), or -1. */
  find(bytes: Uint8Array, start: number, end: number): number {
    let node = 0;
    for (let i = start; i < end && node >= 0; i++) node = this.child(node, bytes[i]);
    return node < 0 ? -1 : this.values[node];
  }

  /** The length of the longest key that prefixes bytes[pos, end), or 0. */
  longestPrefix(bytes: Uint8Array, pos: number, end: number): number {
    let node = 0;
    let longest = 0;
    for (let i = pos; i < end; i++) {
      node = this.child(node, bytes[i]);
      if (node < 0) break;
      if (this.values[node] >= 0) longest = i + 1 - pos;
    }
    return longest;
  }

  /** The child of `node` by `byte`, made when there is none (one probe of the table either way). */
  private childOrNew(node: number, byte: number): number {
    const key = node * 256 + byte;
    let mask = this.keys.length - 1;
    let slot = hash(node, byte) & mask;
    for (; this.keys[slot] !== -1; slot = (slot + 1) & mask) if (this.keys[slot] === key) return this.children[slot];
    if (2 * (this.edges + 1) > this.keys.length) {
      this.rehash();
      mask = this.keys.length - 1;
      for (slot = hash(node, byte) & mask; this.keys[slot] !== -1; ) slot = (slot + 1) & mask;
    }
    if (this.nodes === this.values.length) {
      const grown = new Int32Array(2 * this.nodes).fill(-1);
      grown.set(this.values);
      this.values = grown;
    }
    this.keys[slot] = key;
    this.children[slot] = this.nodes;
    this.edges++;
    return this.nodes++;
  }

  /** Puts an edge into a free slot (rehashing). */
  private place(node: number, byte: number, child: number): void {
    const mask = this.keys.length - 1;
    let slot = hash(node, byte) & mask;
    while (this.keys[slot] !== -1) slot = (slot + 1) & mask;
    this.keys[slot] = node * 256 + byte;
    this.children[slot] = child;
  }

  /** Doubles the table, keeping it at most half full. */
  private rehash(): void {
    const { keys, children } = this;
    this.keys = new Float64Array(2 * keys.length).fill(-1);
    this.children = new Int32Array(2 * keys.length);
    for (let slot = 0; slot < keys.length; slot++) {
      const key = keys[slot];
      if (key !== -1) this.place(Math.floor(key / 256), key % 256, children[slot]);
    }
  }
}

/** A well-mixed 32-bit hash of an edge (murmur3's finalizer). */
function hash(node: number, byte: number): number {
  let h = Math.imul(node, 0x9e3779b1) ^ byte;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
