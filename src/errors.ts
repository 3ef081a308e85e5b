/** What went wrong, as a stable string a caller can switch on. */
export type ErrorCode =
  | 'BAD_ARGUMENT' // a kernel or API call with a wrong size, shape or bound
  | 'BAD_CONFIG' // config.json missing, unreadable or inconsistent
  | 'BAD_FILE' // model.safetensors truncated, corrupt or not safetensors
  | 'BAD_TENSOR' // a tensor missing, misshapen or of an unsupported dtype
  | 'BAD_INPUT' // token ids: empty, outside the vocabulary, too long, all padding
  | 'UNSUPPORTED' // the engine lacks WebAssembly SIMD128, or a file uses what wasmformer does not run
  | 'OUT_OF_MEMORY' // the model needs more WebAssembly memory than the engine grants (4 GiB at most)
  | 'DISPOSED'; // a call on a model after dispose()

/** The one error class wasmformer throws on purpose: every message names what was wrong. */
export class WasmformerError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'WasmformerError';
    this.code = code;
  }
}
