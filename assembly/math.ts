// STUB: to be written (issue #2): SIMD exp and GELU accurate to float32.
/** e^x in four lanes. */
export function exp4(x: v128): v128 {
  return f32x4(
    Mathf.exp(f32x4.extract_lane(x, 0)), Mathf.exp(f32x4.extract_lane(x, 1)),
    Mathf.exp(f32x4.extract_lane(x, 2)), Mathf.exp(f32x4.extract_lane(x, 3)),
  );
}
/** GELU, exact erf form, in four lanes. */
export function gelu4(x: v128): v128 {
  return x;
}
