// STUB: to be written (issue #2).
export function packedSize(n: i32, k: i32): i32 { return n * (k + 1); }
export function pack(packed: usize, w: usize, bias: usize, n: i32, k: i32, ldw: i32): void {}
export function matmul(out: usize, a: usize, packed: usize, m: i32, k: i32, n: i32, lda: i32, ldo: i32, act: i32): void {}
