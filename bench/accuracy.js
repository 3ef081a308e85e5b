// Accuracy of int8 weights (dtype 'q8') against float32 on the two trained demos, by their
// held-out sets:
//   numbers         (models/numbers, 1000 numbers to English words): exact matches, greedy
//   en-de-messages  (1134 English -> German messages): corpus BLEU against the references
//                   (sacrebleu's default, bench/bleu.js), greedy and beam 4
// and for both the share of outputs identical to float32's, per build.
//
//   npm run bench -- accuracy [--json FILE]
import { readFileSync } from 'node:fs';
import { loadTranslator } from '../dist/index.js';
import { corpusBleu } from './bleu.js';

const MODELS = new URL('../models/', import.meta.url);

export const columns = [
  { key: 'model', title: 'model' },
  { key: 'build', title: 'build' },
  { key: 'search', title: 'search' },
  { key: 'dtype', title: 'dtype' },
  { key: 'exact_match', title: 'exact match', digits: 4 },
  { key: 'bleu', title: 'BLEU', digits: 2 },
  { key: 'same_as_f32', title: 'same as f32', digits: 4 },
  { key: "sentences", title: "sentences", digits: 0 },
];

const read = (model, file) => JSON.parse(readFileSync(new URL(`${model}/${file}`, MODELS), 'utf8'));

/** Each dtype's outputs of texts, and the rows that compare them. */
async function compare(model, build, search, texts, options, score) {
  const rows = [];
  let reference = null;
  for (const dtype of ['f32', 'q8']) {
    const translator = await loadTranslator(new URL(`${model}/`, MODELS), { build, dtype });
    const outputs = await translator.translate(texts, options);
    translator.dispose();
    reference ??= outputs;
    const same = outputs.filter((o, i) => o === reference[i]).length / outputs.length;
    rows.push({ model, build, search, dtype, ...score(outputs), same_as_f32: same, sentences: texts.length });
  }
  return rows;
}

export async function run({ builds }) {
  const rows = [];
  const numbers = read('numbers', 'heldout.json').items;
  const messages = read('en-de-messages', 'heldout.json').items;
  for (const build of builds) {
    rows.push(...await compare('numbers', build, 'greedy', numbers.map((x) => x.text), {},
      (out) => ({ exact_match: out.filter((o, i) => o === numbers[i].expected).length / out.length, bleu: null })));
    for (const [search, numBeams] of [['greedy', 1], ['beam4', 4]]) {
      rows.push(...await compare('en-de-messages', build, search, messages.map((x) => x.en), { numBeams },
        (out) => ({ exact_match: null, bleu: corpusBleu(out, messages.map((x) => x.de)) })));
    }
  }
  return rows;
}
