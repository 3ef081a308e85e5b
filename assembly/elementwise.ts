// STUB: to be written (issue #2).
export function gelu(out: usize, x: usize, n: i32): void {}
export function relu(out: usize, x: usize, n: i32): void {}
export function add(out: usize, a: usize, b: usize, n: i32): void {}
export function vexp(out: usize, x: usize, n: i32): void {}
export function embed(out: usize, table: usize, ids: usize, pos: usize, n: i32, dModel: i32, scale: f32): void {}
export function argmax(x: usize, n: i32): i32 { return 0; }
