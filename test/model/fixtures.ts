import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What tools/make_fixtures.py recorded from torch.nn.Transformer for one model. */
export interface Expected {
  case: string;
  about: string;
  forward: { src: number[]; tgt: number[]; logits: number[] }[];
  greedy: { src: number[]; max_new_tokens: number; ids: number[]; stopped_by_eos: boolean }[];
}

export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** Every tutorial-layout fixture folder of tools/make_fixtures.py with its expectations (marian/ and shared/ hold others). */
export function fixtures(): { dir: string; expected: Expected }[] {
  return readdirSync(FIXTURES, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(`${FIXTURES}${entry.name}/expected.json`))
    .map((entry) => {
      const dir = FIXTURES + entry.name;
      return { dir, expected: JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as Expected };
    });
}
