// STUB: to be written (issue #2).
export function qkT(out: usize, q: usize, k: usize, sq: i32, sk: i32, dk: i32, ldq: i32, ldk: i32, ldo: i32, scale: f32): void {}
export function pv(out: usize, p: usize, v: usize, sq: i32, sk: i32, dv: i32, ldp: i32, ldv: i32, ldo: i32): void {}
export function attention(out: usize, q: usize, k: usize, v: usize, probs: usize, sq: i32, sk: i32, nhead: i32, dk: i32, ldq: i32, ldk: i32, ldv: i32, ldo: i32, scale: f32, causalOffset: i32, keyMask: usize, headStride: i32): void {}
