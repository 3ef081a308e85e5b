// Corpus BLEU as sacrebleu computes it by default (BLEU-4, tokenizer 13a, exponential smoothing,
// one reference, case-sensitive: its signature nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp), so
// that bench/accuracy.js reports the numbers models/en-de-messages/eval.json was measured in.

// mteval-v13a's rules, in sacrebleu's order.
const RULES = [
  [/([{-~[-` -&(-+:-@/])/g, ' $1 '], // punctuation and symbols
  [/([^0-9])([.,])/g, '$1 $2 '], // period and comma unless preceded by a digit
  [/([.,])([^0-9])/g, ' $1 $2'], // period and comma unless followed by a digit
  [/([0-9])(-)/g, '$1 $2 '], // a dash after a digit
];

/** sacrebleu's 13a tokenization of one line. */
export function tokenize13a(line) {
  let s = line.replace(/<skipped>/g, '').replace(/-\n/g, '').replace(/\n/g, ' ');
  if (s.includes('&')) s = s.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  s = ` ${s} `;
  for (const [re, to] of RULES) s = s.replace(re, to);
  return s.split(/\s+/).filter((t) => t !== '');
}

function ngrams(tokens, n) {
  const counts = new Map();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0001');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Corpus BLEU (0-100) of hypotheses against one reference each. */
export function corpusBleu(hypotheses, references) {
  const correct = [0, 0, 0, 0];
  const total = [0, 0, 0, 0];
  let hypLength = 0;
  let refLength = 0;
  hypotheses.forEach((hyp, i) => {
    const h = tokenize13a(hyp);
    const r = tokenize13a(references[i]);
    hypLength += h.length;
    refLength += r.length;
    for (let n = 1; n <= 4; n++) {
      const ref = ngrams(r, n);
      for (const [gram, count] of ngrams(h, n)) correct[n - 1] += Math.min(count, ref.get(gram) ?? 0);
      total[n - 1] += Math.max(0, h.length - n + 1);
    }
  });
  let smooth = 1;
  let logSum = 0;
  for (let n = 0; n < 4; n++) {
    if (total[n] === 0) return 0;
    let p = (100 * correct[n]) / total[n];
    if (correct[n] === 0) {
      smooth *= 2;
      p = 100 / (smooth * total[n]);
    }
    logSum += Math.log(p);
  }
  const bp = hypLength === 0 ? 0 : hypLength < refLength ? Math.exp(1 - refLength / hypLength) : 1;
  return bp * Math.exp(logSum / 4);
}
