/** A trie over byte strings with an integer value per key: sentencepiece's piece and symbol look-ups. */
export class ByteTrie {
  /** child node of (node, byte), keyed node * 256 + byte */
  private readonly children = new Map<number, number>();
  /** value per node, -1 where no key ends */
  private readonly values: number[] = [-1];

  /** Adds a key (bytes) with its value (keys are unique where this trie is built). */
  insert(key: Uint8Array, value: number): void {
    let node = 0;
    for (const b of key) {
      let next = this.children.get(node * 256 + b);
      if (next === undefined) {
        next = this.values.length;
        this.values.push(-1);
        this.children.set(node * 256 + b, next);
      }
      node = next;
    }
    this.values[node] = value;
  }

  /** The node reached from `node` by `byte`, or -1. The root is node 0. */
  child(node: number, byte: number): number {
    return this.children.get(node * 256 + byte) ?? -1;
  }

  /** The value of the key that ends at `node`, or -1. */
  value(node: number): number {
    return this.values[node];
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
}
