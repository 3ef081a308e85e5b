import { WasmformerError } from '../errors.js';
import { Callable, Dict, Tuple, describeValue, unpickle } from './pickle.js';
import { DTYPE_SIZES, type Dtype, type TensorEntry } from './safetensors.js';
import { firstZipEntryName, readZip, type ZipEntry } from './zip.js';

/** A torch.save archive's pickle: `<archive>/data.pkl`, the archive named after the file. */
const DATA_PKL = /^[^/]+\/data\.pkl$/;

/** The legacy format's first pickle: protocol 2, then the magic number 0x1950a86a20f9469cfc6c as a LONG1. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

type Fail = (message: string) => never;

/** A storage class a persistent id names (torch.FloatStorage, ...): its elements' dtype, null for bytes. */
class StorageType {
  constructor(readonly name: string, readonly dtype: Dtype | null) {}
  toString(): string {
    return this.name;
  }
}

/** A torch dtype global (torch.uint16, ...), which _rebuild_tensor_v3 takes with a byte storage. */
class TorchDtype {
  constructor(readonly name: string, readonly dtype: Dtype) {}
  toString(): string {
    return this.name;
  }
}

/** One storage of the archive: `<archive>/data/<key>`, a persistent id resolved. */
class Storage {
  constructor(readonly key: string, readonly type: StorageType, readonly record: ZipEntry) {}
  toString(): string {
    return `storage "${this.key}" (${this.type.name})`;
  }
}

/** What a rebuild function returns: a tensor's arguments, checked once the state dict names it. */
class TensorArgs {
  constructor(
    readonly storage: unknown,
    readonly offset: unknown,
    readonly size: unknown,
    readonly stride: unknown,
    readonly dtype: unknown, // _rebuild_tensor_v3's; v2's dtype is its storage's
    readonly metadata: unknown,
  ) {}
  toString(): string {
    return 'a tensor';
  }
}

/** The dtypes of torch's storage classes, as the pickle names them. */
const STORAGE_DTYPES: Record<string, Dtype | null> = {
  'torch.DoubleStorage': 'F64', 'torch.FloatStorage': 'F32', 'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16', 'torch.LongStorage': 'I64', 'torch.IntStorage': 'I32',
  'torch.ShortStorage': 'I16', 'torch.CharStorage': 'I8', 'torch.ByteStorage': 'U8', 'torch.BoolStorage': 'BOOL',
  'torch.storage.UntypedStorage': null,
};

/** The dtypes torch 2 saves with _rebuild_tensor_v3 that safetensors names too. */
const V3_DTYPES: Record<string, Dtype> = {
  'torch.uint16': 'U16', 'torch.uint32': 'U32', 'torch.uint64': 'U64',
  'torch.float8_e4m3fn': 'F8_E4M3', 'torch.float8_e5m2': 'F8_E5M2',
};

/** What torch.load(weights_only=True) allows that no safetensors entry can stand for: UNSUPPORTED, saying what. */
const UNREAD = new Map<string, string>(Object.entries({
  'torch._utils._rebuild_qtensor': 'quantized tensors',
  'torch._utils._rebuild_sparse_tensor': 'sparse tensors',
  'torch._utils._rebuild_sparse_csr_tensor': 'sparse tensors',
  'torch._utils._rebuild_nested_tensor': 'nested tensors',
  'torch._utils._rebuild_meta_tensor_no_storage': 'meta tensors (which have no data)',
  'torch._utils._rebuild_wrapper_subclass': 'tensor subclasses',
  'torch._utils._rebuild_device_tensor_from_numpy': 'tensors of another device',
  'torch._utils._rebuild_device_tensor_from_cpu_tensor': 'tensors of another device',
  'torch._tensor._rebuild_from_type_v2': 'tensor subclasses or tensors with Python attributes',
  'torch.ComplexFloatStorage': 'complex tensors', 'torch.ComplexDoubleStorage': 'complex tensors',
  'torch.QInt8Storage': 'quantized tensors', 'torch.QInt32Storage': 'quantized tensors',
  'torch.QUInt8Storage': 'quantized tensors', 'torch.QUInt4x2Storage': 'quantized tensors',
  'torch.QUInt2x4Storage': 'quantized tensors',
}));

/** A rebuild function: its arity range, and where its tensor, dtype and metadata arguments are. */
function rebuild(name: string, arities: readonly number[], dtypeAt: number | null): Callable {
  return new Callable(name, (args, fail) => {
    if (!arities.includes(args.length)) fail(`takes ${arities.join(' or ')} arguments, got ${args.length}`);
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, dtype][, metadata])
    const [storage, offset, size, stride] = args;
    const metadataAt = dtypeAt === null ? 6 : 7;
    return new TensorArgs(storage, offset, size, stride, dtypeAt === null ? null : args[dtypeAt], args[metadataAt] ?? null);
  });
}

/** A Parameter rebuilt is its data tensor: requires_grad, hooks and Python state do not matter here. */
function parameter(name: string, arity: number): Callable {
  return new Callable(name, (args, fail) => {
    if (args.length !== arity) fail(`takes ${arity} arguments, got ${args.length}`);
    return args[0];
  });
}

/**
 * The whitelist: every global a state dict's pickle uses, and nothing that runs anything. Each
 * is a JS value or a Callable written here; no name is ever looked up anywhere else.
 */
const GLOBALS = new Map<string, unknown>([
  // The state dict itself, and the empty backward_hooks each tensor carries.
  ['collections.OrderedDict', new Callable('collections.OrderedDict', (args, fail) => {
    if (args.length !== 0) fail(`takes no arguments here, got ${args.length}`);
    return new Dict();
  })],
  // Every tensor of a dtype with a storage class; v3 for the dtypes torch 2 added (uint16, float8).
  ['torch._utils._rebuild_tensor_v2', rebuild('torch._utils._rebuild_tensor_v2', [6, 7], null)],
  ['torch._utils._rebuild_tensor_v3', rebuild('torch._utils._rebuild_tensor_v3', [7, 8], 6)],
  // nn.Parameter objects saved as they are; _with_state when one has Python attributes (torch 2).
  ['torch._utils._rebuild_parameter', parameter('torch._utils._rebuild_parameter', 3)],
  ['torch._utils._rebuild_parameter_with_state', parameter('torch._utils._rebuild_parameter_with_state', 4)],
  // The storage classes a persistent id names, and v3's dtypes: constants, never called.
  ...Object.entries(STORAGE_DTYPES).map(([name, dtype]): [string, unknown] => [name, new StorageType(name, dtype)]),
  ...Object.entries(V3_DTYPES).map(([name, dtype]): [string, unknown] => [name, new TorchDtype(name, dtype)]),
]);

/** Whether bytes are torch.save's, in either format (a zip, or the legacy pickle): what parseTorchZip reads or explains. */
export function isTorchFile(bytes: Uint8Array): boolean {
  const zip = bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  return zip || LEGACY_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Whether bytes begin as a torch.save (>= 1.6) archive does: a zip whose first entry is
 * `<archive>/data.pkl`. The legacy format (a bare pickle) is not one; parseTorchZip says what it is.
 */
export function isTorchZip(bytes: Uint8Array): boolean {
  const name = firstZipEntryName(bytes);
  return name !== null && DATA_PKL.test(name);
}

/**
 * Reads a torch.save file of a state dict (`torch.save(model.state_dict(), path)`, torch >= 1.6)
 * into entries like parseSafetensors' (absolute byte ranges into bytes, safetensors' dtype
 * names), so that readF32 and the tensor checks work on either format. Its pickle is run by a
 * machine that executes nothing (see GLOBALS); any other global is BAD_FILE naming it. The top
 * object must be the state dict itself, a dict of tensors by name. The legacy format, big-endian
 * files, non-contiguous tensors and tensors of kinds safetensors has no name for are UNSUPPORTED.
 */
export function parseTorchZip(bytes: Uint8Array, file: string): Map<string, TensorEntry> {
  const fail = (message: string): never => {
    throw new WasmformerError('BAD_FILE', `${file}: ${message}`);
  };
  refuseLegacy(bytes, file);
  const records = readZip(bytes, file);
  const pickles = [...records.keys()].filter((name) => DATA_PKL.test(name));
  if (pickles.length !== 1) {
    fail(pickles.length === 0
      ? 'a zip archive without <archive>/data.pkl: not one that torch.save wrote'
      : `a zip archive with ${pickles.length} pickles (${pickles.join(', ')}): torch.save writes one`);
  }
  const archive = pickles[0].slice(0, -'/data.pkl'.length);
  checkRecords(bytes, records, archive, file, fail);
  const root = unpickle(range(bytes, records.get(pickles[0])!), `${file}: data.pkl`, {
    resolve: (module, name) => resolveGlobal(`${module}.${name}`, file),
    persistentLoad: storageLoader(records, archive, fail),
  });
  return stateDict(root, file, fail);
}

function refuseLegacy(bytes: Uint8Array, file: string): void {
  if (LEGACY_MAGIC.every((b, i) => bytes[i] === b)) {
    throw new WasmformerError('UNSUPPORTED',
      `${file}: this is PyTorch's legacy torch.save format (torch < 1.6, or _use_new_zipfile_serialization=False: ` +
      'pickles that begin with the magic number 0x1950a86a20f9469cfc6c, then raw storages), which is not read. ' +
      'Save it again with torch >= 1.6, whose default is the zip format (_use_new_zipfile_serialization=True): ' +
      'torch.save(torch.load(path, weights_only=True), new_path); or save it as safetensors');
  }
}

/**
 * A look at a torch.save file's first bytes while it downloads (its zip directory comes last):
 * the legacy format, or a zip whose first entry is not `<archive>/data.pkl`, fails at once.
 * Returns the bytes it needs to decide, or 0 once the rest can only be checked whole.
 */
export function torchHeadBytes(head: Uint8Array, size: number | null, file: string): number {
  refuseLegacy(head, file);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const needed = head.length < 30 ? 30 : 30 + view.getUint16(26, true);
  if (needed > head.length && head.length !== size) return needed;
  if (!isTorchZip(head)) {
    throw new WasmformerError('BAD_FILE', `${file}: a zip archive whose first entry is not <archive>/data.pkl: not one that torch.save wrote`);
  }
  return 0;
}

function range(bytes: Uint8Array, record: ZipEntry): Uint8Array {
  return bytes.subarray(record.begin, record.end);
}

/** `version` must be there (torch's reader needs it); `byteorder` (torch >= 2) must say little-endian. */
function checkRecords(bytes: Uint8Array, records: Map<string, ZipEntry>, archive: string, file: string, fail: Fail): void {
  const text = (record: ZipEntry): string => new TextDecoder('latin1').decode(range(bytes, record)).trim();
  const record = records.get(`${archive}/version`) ?? records.get(`${archive}/.data/version`);
  if (record === undefined) fail(`a zip archive without ${archive}/version: not one that torch.save wrote`);
  const version = text(record);
  if (!/^\d+$/.test(version)) fail(`${archive}/version holds ${JSON.stringify(version.slice(0, 20))}, not a version number`);
  const byteorder = records.get(`${archive}/byteorder`);
  const order = byteorder === undefined ? 'little' : text(byteorder); // torch < 2 wrote none, and only little-endian
  if (order === 'big') {
    throw new WasmformerError('UNSUPPORTED',
      `${file}: its tensors are big-endian (${archive}/byteorder says "big": saved on a big-endian machine), which is not read; ` +
      'load and save it again on a little-endian one, or save it as safetensors');
  }
  if (order !== 'little') fail(`${archive}/byteorder holds ${JSON.stringify(order.slice(0, 20))}, not "little" or "big"`);
}

/** A GLOBAL's value from the whitelist, or an error naming it: UNSUPPORTED for a kind of tensor not read, else BAD_FILE. */
function resolveGlobal(qualified: string, file: string): unknown {
  const value = GLOBALS.get(qualified);
  if (value !== undefined) return value;
  const shown = /^[\w.]{1,200}$/.test(qualified) ? qualified : JSON.stringify(qualified.slice(0, 200));
  const what = UNREAD.get(qualified);
  if (what !== undefined) {
    throw new WasmformerError('UNSUPPORTED', `${file}: data.pkl uses ${shown}: it holds ${what}, which are not read`);
  }
  const hint = qualified.startsWith('torch.nn.modules.')
    ? ' (a whole module was saved, torch.save(model): save its state dict instead, torch.save(model.state_dict(), path))'
    : '';
  throw new WasmformerError('BAD_FILE', `${file}: data.pkl imports ${shown}, which a state dict never needs: refused${hint}`);
}

/**
 * The persistent ids of torch.save: ('storage', storage class, key, location, numel), resolved
 * to the record `<archive>/data/<key>`, whose size must be numel elements. Each key is one
 * Storage, however many tensors (tied weights) use it. The location ('cpu', 'cuda:0') does not
 * matter: the bytes are the same.
 */
function storageLoader(records: Map<string, ZipEntry>, archive: string, fail: Fail): (pid: unknown) => Storage {
  const storages = new Map<string, Storage>();
  return (pid) => {
    const items = pid instanceof Tuple ? pid.items : [];
    const [kind, type, key, location, numel] = items;
    if (items.length !== 5 || kind !== 'storage' || !(type instanceof StorageType) || typeof key !== 'string' ||
      typeof location !== 'string' || !isIndex(numel)) {
      return fail(`data.pkl: persistent id ${describeValue(pid)} is not ('storage', a storage class, key, location, numel): refused`);
    }
    const known = storages.get(key);
    if (known !== undefined) {
      if (known.type !== type) fail(`data.pkl: storage "${key}" is both ${known.type.name} and ${type.name}`);
      return known;
    }
    const name = `${archive}/data/${key}`;
    const record = records.get(name) ?? fail(`data.pkl: storage "${key}" has no record ${name} in the archive`);
    const bytes = numel * (type.dtype === null ? 1 : DTYPE_SIZES[type.dtype]);
    if (record.end - record.begin !== bytes) {
      fail(`${name} holds ${record.end - record.begin} bytes, but data.pkl says ${numel} elements of ${type.name} (${bytes} bytes)`);
    }
    const storage = new Storage(key, type, record);
    storages.set(key, storage);
    return storage;
  };
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The state dict's entries: the top object must be a dict of tensors by name, and only that. */
function stateDict(root: unknown, file: string, fail: Fail): Map<string, TensorEntry> {
  if (!(root instanceof Dict)) fail(`data.pkl holds ${describeValue(root)}, not a state dict (a dict of tensors by name)`);
  const entries = new Map<string, TensorEntry>();
  for (const [name, value] of root.items) {
    if (typeof name !== 'string') fail(`data.pkl: state dict key ${describeValue(name)} is not a string`);
    if (!(value instanceof TensorArgs)) fail(notATensor(root, name, value));
    entries.set(name, tensorEntry(name, value, file, fail));
  }
  return entries;
}

/** Why a dict entry that is not a tensor is refused, naming the state dict when a checkpoint wraps one. */
function notATensor(root: Dict, name: string, value: unknown): string {
  const inner = [...root.items].find(([k, v]) => typeof k === 'string' && v instanceof Dict && v.items.size > 0 &&
    [...v.items.values()].every((t) => t instanceof TensorArgs));
  const hint = inner === undefined ? '' : `. This is a checkpoint with a state dict under ${JSON.stringify(inner[0])}: ` +
    `save that alone, torch.save(checkpoint[${JSON.stringify(inner[0])}], path)`;
  return `data.pkl: ${JSON.stringify(name)} is ${describeValue(value)}, not a tensor: a state dict holds only tensors${hint}`;
}

/** A tensor's entry: its storage, dtype, shape and byte range, checked; row-major or UNSUPPORTED. */
function tensorEntry(name: string, t: TensorArgs, file: string, fail: Fail): TensorEntry {
  const tensor = `data.pkl: tensor ${JSON.stringify(name)}`;
  const { storage } = t;
  if (!(storage instanceof Storage)) return fail(`${tensor} has storage ${describeValue(storage)}, not one of the archive`);
  const dtype = tensorDtype(t, storage, tensor, fail);
  if (!isIndex(t.offset)) fail(`${tensor} has storage offset ${describeValue(t.offset)}: must be a non-negative integer`);
  const shape = indices(t.size, `${tensor} has size`, fail);
  const stride = indices(t.stride, `${tensor} has stride`, fail);
  if (stride.length !== shape.length) fail(`${tensor} has ${shape.length} sizes but ${stride.length} strides`);
  const unread = (why: string): never => {
    throw new WasmformerError('UNSUPPORTED', `${file}: ${tensor} ${why}`);
  };
  if (!isRowMajor(shape, stride)) {
    unread(`has strides [${stride.join(', ')}] for size [${shape.join(', ')}]: not row-major (a transposed or strided ` +
      'view?), which is not read; save tensor.contiguous() instead');
  }
  if (t.metadata !== null) {
    if (!(t.metadata instanceof Dict)) fail(`${tensor} has metadata ${describeValue(t.metadata)}, not a dict`);
    if ([...t.metadata.items.values()].some((v) => v !== false)) {
      unread('has a lazy conjugate or negative bit set (torch.resolve_conj / resolve_neg): its bytes are not its values, and it is not read');
    }
  }
  const size = DTYPE_SIZES[dtype];
  const begin = storage.record.begin + t.offset * size;
  const length = elements(shape, (storage.record.end - begin) / size) * size;
  if (begin > storage.record.end || begin + length > storage.record.end) {
    fail(`${tensor} of size [${shape.join(', ')}] at offset ${t.offset} runs past its storage "${storage.key}" ` +
      `(${storage.record.end - storage.record.begin} bytes)`);
  }
  return { name, dtype, shape, begin, end: begin + length };
}

/** v2's dtype is its storage class's; v3's is its own argument, with a byte storage. */
function tensorDtype(t: TensorArgs, storage: Storage, tensor: string, fail: Fail): Dtype {
  if (t.dtype === null) {
    return storage.type.dtype ?? fail(`${tensor}: _rebuild_tensor_v2 of an untyped storage, which carries no dtype`);
  }
  if (!(t.dtype instanceof TorchDtype)) return fail(`${tensor} has dtype ${describeValue(t.dtype)}, not a torch dtype`);
  if (storage.type.dtype !== null) fail(`${tensor}: _rebuild_tensor_v3 of ${storage.type.name}: it takes an UntypedStorage`);
  return t.dtype.dtype;
}

function indices(value: unknown, what: string, fail: Fail): number[] {
  if (!(value instanceof Tuple) || !value.items.every(isIndex)) {
    return fail(`${what} ${describeValue(value)}: must be a tuple of non-negative integers`);
  }
  return value.items as number[];
}

/** Whether strides are row-major: dims of size 1 may have any stride, and an empty tensor is contiguous. */
function isRowMajor(shape: number[], stride: number[]): boolean {
  if (shape.includes(0)) return true;
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** The element count, or more than `limit` as soon as it passes it (no product overflows). */
function elements(shape: number[], limit: number): number {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > limit) return Infinity;
  }
  return n;
}
