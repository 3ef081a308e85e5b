import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The shipped demo model's folder (numbers in digits to English words). */
export const DEMO = fileURLToPath(new URL('../models/numbers/', import.meta.url));

/** An example of heldout.json or samples.json, with PyTorch's greedy output. */
export interface Item {
  text: string;
  src_ids: number[];
  expected: string;
  greedy_ids: number[];
  greedy_text: string;
}

/** A JSON file of the demo model's folder. */
export function readDemo(name: string): any {
  return JSON.parse(readFileSync(DEMO + name, 'utf8'));
}
