/** A token transformers' tokenizer keeps whole (its AddedToken): special tokens and added ones. */
export interface AddedToken {
  content: string;
  /** strip whitespace on the token's left (from the text before it) */
  lstrip: boolean;
  /** strip whitespace on its right */
  rstrip: boolean;
  /** only match as a whole word */
  singleWord: boolean;
}

/** The characters Python's str.isspace() accepts: what str.strip() removes (not JS's trim() set). */
const PY_SPACE = '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

/** Python's str.lstrip(). */
export function pyLstrip(s: string): string {
  let i = 0;
  while (i < s.length && PY_SPACE.includes(s[i])) i++;
  return s.slice(i);
}

/** Python's str.rstrip(). */
export function pyRstrip(s: string): string {
  let i = s.length;
  while (i > 0 && PY_SPACE.includes(s[i - 1])) i--;
  return s.slice(0, i);
}

/** Python's str.strip(). */
export function pyStrip(s: string): string {
  return pyLstrip(pyRstrip(s));
}

interface TrieNode {
  children: Map<string, TrieNode>;
  /** a token ends here */
  end: boolean;
}

function node(): TrieNode {
  return { children: new Map(), end: false };
}

/**
 * transformers' tokenization Trie: splits a text around the added tokens in it, in one pass
 * over its code points, the first match found winning and then extended to the longest token
 * starting at or before it (the same cuts as transformers' Trie.split, lookahead included).
 */
export class AddedTokenTrie {
  private readonly root = node();

  constructor(tokens: Iterable<string>) {
    for (const token of tokens) this.add(token);
  }

  /** The text cut before and after every added token it contains. */
  split(text: string): string[] {
    const chars = Array.from(text);
    const n = chars.length;
    // Partial matches: where each starts, and how far into the trie it got.
    let states = new Map<number, TrieNode>();
    const offsets = [0];
    let skip = 0;
    for (let current = 0; current < n; current++) {
      if (skip && current < skip) continue;
      const ch = chars[current];
      const dead: number[] = [];
      let reset = false;
      for (const [first, state] of states) {
        if (state.end) {
          const [start, end, resume] = this.longestAt(states, first, current, chars);
          if (resume >= 0) skip = resume;
          offsets.push(start, end);
          reset = true;
          break;
        }
        const next = state.children.get(ch);
        if (next) states.set(first, next);
        else dead.push(first);
      }
      if (reset) states = new Map();
      else for (const start of dead) states.delete(start);
      const begin = this.root.children.get(ch);
      if (current >= skip && begin) states.set(current, begin);
    }
    for (const [start, state] of states) {
      if (state.end) {
        offsets.push(start, n);
        break;
      }
    }
    return cut(chars, offsets);
  }

  /**
   * A match that ended before `current` (it started at `matched`): look for the longest token
   * among the partial matches starting at or before it. Returns [start, end, where to resume
   * or -1], as transformers' lookahead does, including its reading of partial matches that
   * failed on the current character (their node is still the one before it).
   */
  private longestAt(states: Map<number, TrieNode>, matched: number, current: number, chars: string[]): [number, number, number] {
    let start = matched;
    let end = current;
    let resume = -1;
    for (const [lookStart, lookState] of states) {
      if (lookStart > start) break;
      // A partial match that starts earlier was already moved past `current`.
      let index = lookStart < start ? current + 1 : current;
      end = index;
      let state = lookState;
      if (state.end) [start, end, resume] = [lookStart, index, index];
      while (index < chars.length) {
        const next = state.children.get(chars[index]);
        if (!next) break;
        state = next;
        index++;
        if (state.end) [start, end, resume] = [lookStart, index, index];
      }
    }
    return [start, end, resume];
  }

  private add(token: string): void {
    if (token === '') return;
    let at = this.root;
    for (const ch of token) {
      let next = at.children.get(ch);
      if (!next) at.children.set(ch, (next = node()));
      at = next;
    }
    at.end = true;
  }
}

/** The text between consecutive offsets (a cut that goes backwards or is empty is skipped, as transformers does). */
function cut(chars: string[], offsets: number[]): string[] {
  offsets.push(chars.length);
  const pieces: string[] = [];
  let start = 0;
  for (const end of offsets) {
    if (start >= end) continue;
    pieces.push(chars.slice(start, end).join(''));
    start = end;
  }
  return pieces;
}

/**
 * How far before the end of a text cleanUpTokenization may still change it once more text
 * follows: each of its patterns starts with a space and is at most 4 characters long, so only a
 * space among the last 3 characters can begin one.
 */
export const CLEANUP_REACH = 3;

/** transformers' clean_up_tokenization: spaces before punctuation and English contractions removed. */
export function cleanUpTokenization(text: string): string {
  return text
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}
