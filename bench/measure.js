// Timing shared by the suites: benchmark.js runs, interleaved across contenders.
import Benchmark from 'benchmark';

/** A reason to stop a suite that index.js reports as a message, without a stack. */
export class BenchError extends Error {}

/**
 * Times every contender `rounds` times over, in alternation (a, b, c, a, b, c, ...), each time
 * with one short benchmark.js run (`options`, which a contender's own `options` override), and
 * returns each contender's median rate in calls per second: alternating spreads the noise of a
 * shared machine over all contenders alike. A contender is { fn, options? }.
 */
export function interleave(contenders, rounds, options, onRound = () => {}) {
  const rates = contenders.map(() => []);
  for (let round = 0; round < rounds; round++) {
    contenders.forEach((c, i) => rates[i].push(rate(c.fn, { ...options, ...c.options })));
    onRound(round);
  }
  return rates.map(median);
}

/** Calls per second of fn over one synchronous benchmark.js run. */
function rate(fn, options) {
  const bench = new Benchmark({ fn, ...options });
  bench.run();
  if (bench.error) throw bench.error;
  return bench.hz;
}

/** Index of the largest logit; the lowest id wins a tie, as greedy decoding takes it. */
export function argmax(logits) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
