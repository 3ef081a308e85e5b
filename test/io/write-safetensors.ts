// Writes safetensors files in JS, valid or deliberately broken, for the io tests.

/** Bytes per element, for the dtypes the tests write. */
export const SIZES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, U16: 2, I16: 2, F16: 2, BF16: 2, U32: 4, I32: 4, F32: 4, U64: 8, I64: 8, F64: 8,
};

export interface TensorSpec {
  shape: number[];
  dtype?: string; // F32 when absent
  /** Raw little-endian bytes; zeros when absent. For F32, numbers may be given instead. */
  data?: Uint8Array | ArrayLike<number>;
}

/** A JSON header object as safetensors writes it. */
export type Header = Record<string, unknown>;

/**
 * A valid safetensors file: tensors laid out in the given order, back to back, the header
 * padded with spaces to a multiple of 8 bytes as the official writer does.
 */
export function writeSafetensors(tensors: Record<string, TensorSpec>, metadata?: Record<string, string>): Uint8Array {
  const header: Header = metadata === undefined ? {} : { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const dtype = t.dtype ?? 'F32';
    const bytes = tensorBytes(t, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  return assemble(header, concat(chunks), { pad: true });
}

function tensorBytes(t: TensorSpec, dtype: string): Uint8Array {
  const size = t.shape.reduce((a, b) => a * b, 1) * SIZES[dtype];
  if (t.data === undefined) return new Uint8Array(size);
  const bytes = t.data instanceof Uint8Array ? t.data : new Uint8Array(Float32Array.from(t.data).buffer);
  if (bytes.length !== size) throw new Error(`test data of ${bytes.length} bytes for ${size}`);
  return bytes;
}

/**
 * A file from a header (object or raw text) and a data section, as is: nothing is checked.
 * headerLength overrides the 8-byte length field (a bigint reaches all 64 bits).
 */
export function assemble(
  header: Header | string,
  data: Uint8Array,
  options: { pad?: boolean; headerLength?: number | bigint } = {},
): Uint8Array {
  let text = typeof header === 'string' ? header : JSON.stringify(header);
  let json = new TextEncoder().encode(text);
  if (options.pad === true && json.length % 8 !== 0) {
    text += ' '.repeat(8 - (json.length % 8));
    json = new TextEncoder().encode(text);
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(options.headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** The header object and the data section of a file written by writeSafetensors or assemble. */
export function split(file: Uint8Array): { header: Header; data: Uint8Array } {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Header;
  return { header, data: file.subarray(8 + n) };
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The tensors of a valid file as writeSafetensors takes them (dtype, shape, raw bytes), in header order. */
export function tensorsOf(file: Uint8Array): Record<string, Required<TensorSpec> & { data: Uint8Array }> {
  const { header, data } = split(file);
  const out: Record<string, Required<TensorSpec> & { data: Uint8Array }> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: [begin, end] } = info as { dtype: string; shape: number[]; data_offsets: [number, number] };
    out[name] = { dtype, shape, data: new Uint8Array(data.subarray(begin, end)) }; // a copy, even of a Buffer (whose slice is a view)
  }
  return out;
}
