// Scalar float64 references of the attention kernels, the last built from the first two and the
// softmax reference, head by head.
import { softmax } from './softmax.js';

/** A strided [rows, cols] view: element (i, j) is data[at + i·ld + j]. */
export interface Strided {
  data: ArrayLike<number>;
  at: number;
  ld: number;
}

/** scores[i, j] = scale · dot(q row i, k row j) over dk, dense [sq, sk]. */
export function qkT(q: Strided, k: Strided, sq: number, sk: number, dk: number, scale: number): Float64Array {
  const out = new Float64Array(sq * sk);
  for (let i = 0; i < sq; i++) {
    for (let j = 0; j < sk; j++) {
      let dot = 0;
      for (let d = 0; d < dk; d++) dot += q.data[q.at + i * q.ld + d] * k.data[k.at + j * k.ld + d];
      out[i * sk + j] = scale * dot;
    }
  }
  return out;
}

/** out[i, d] = Σ_j p[i, j] · v[j, d], dense [sq, dv]. */
export function pv(p: Strided, v: Strided, sq: number, sk: number, dv: number): Float64Array {
  const out = new Float64Array(sq * dv);
  for (let i = 0; i < sq; i++) {
    for (let d = 0; d < dv; d++) {
      let sum = 0;
      for (let j = 0; j < sk; j++) sum += p.data[p.at + i * p.ld + j] * v.data[v.at + j * v.ld + d];
      out[i * dv + d] = sum;
    }
  }
  return out;
}

/**
 * Multi-head attention: head h uses columns [h·dk, (h+1)·dk) of q, k, v. Returns out, dense
 * [sq, nhead·dk], and the probabilities of every head, dense [sq, sk] each.
 */
export function attention(
  q: Strided, k: Strided, v: Strided, sq: number, sk: number, nhead: number, dk: number,
  scale: number, causalOffset: number, keyMask: ArrayLike<number> | null,
): { out: Float64Array; probs: Float64Array[] } {
  const width = nhead * dk;
  const out = new Float64Array(sq * width);
  const probs: Float64Array[] = [];
  for (let h = 0; h < nhead; h++) {
    const column = (s: Strided) => ({ ...s, at: s.at + h * dk });
    const scores = qkT(column(q), column(k), sq, sk, dk, scale);
    const p = softmax(scores, sq, sk, 1, causalOffset, keyMask);
    const head = pv({ data: p, at: 0, ld: sk }, column(v), sq, sk, dk);
    for (let i = 0; i < sq; i++) for (let d = 0; d < dk; d++) out[i * width + h * dk + d] = head[i * dk + d];
    probs.push(p);
  }
  return { out, probs };
}
