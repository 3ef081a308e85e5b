import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkWeights, parseConfig } from '../../dist/io/index.js';
import { parseSafetensors, readF32 } from '../../dist/io/safetensors.js';
import { isTorchZip, parseTorchZip } from '../../dist/io/torch.js';
import { readZip } from '../../dist/io/zip.js';
import { errorOf } from '../expect-error.js';
import {
  op, pickle, stateDictPickle, tensorPickle, torchArchive, tuple, writeZip, type TensorPickle,
} from './write-torch.js';

const DIR = new URL('./fixtures/torch/', import.meta.url);
const SOURCE = new URL('../fixtures/source_padding/', import.meta.url);
const VERSIONS = ['1.13', '2.13'];
/** What the hostile pickles would run (tools/make_torch_fixtures.py): the file must never appear. */
const PWNED = '/tmp/wasmformer-pwned';

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, DIR)));
const parse = (bytes: Uint8Array, file = 'pytorch_model.bin'): ReturnType<typeof parseTorchZip> => parseTorchZip(bytes, file);
const refused = (bytes: Uint8Array, code = 'BAD_FILE'): string => errorOf(() => parse(bytes), code);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** A float32 storage of n elements 0, 1, 2, ... */
function floats(n: number): Uint8Array {
  return new Uint8Array(Float32Array.from({ length: n }, (_, i) => i).buffer);
}

/** An archive of one float32 storage "0" of n elements and tensors over it. */
function archive(n: number, tensors: Record<string, Partial<TensorPickle>>): Uint8Array {
  const items = Object.fromEntries(Object.entries(tensors).map(([name, t]) =>
    [name, tensorPickle({ key: '0', numel: n, size: [n], ...t })]));
  return torchArchive(stateDictPickle(items), { 0: floats(n) });
}

describe('parseTorchZip: files torch.save wrote', () => {
  const safetensorsBytes = new Uint8Array(readFileSync(new URL('model.safetensors', SOURCE)));
  const safetensors = parseSafetensors(safetensorsBytes, 'model.safetensors');
  const config = parseConfig(JSON.parse(readFileSync(new URL('config.json', SOURCE), 'utf8')), 'config.json');

  for (const v of VERSIONS) {
    it(`torch ${v}: the tutorial model's state dict equals its safetensors, byte for byte`, () => {
      const bytes = fixture(`model-${v}.pt`);
      const entries = parse(bytes);
      expect([...entries.keys()].sort()).toEqual([...safetensors.keys()].sort());
      for (const [name, want] of safetensors) {
        const got = entries.get(name)!;
        expect(got).toMatchObject({ name, dtype: 'F32', shape: want.shape });
        expect(hex(bytes.subarray(got.begin, got.end))).toBe(hex(safetensorsBytes.subarray(want.begin, want.end)));
        expect(readF32(bytes, got, 'pytorch_model.bin')).toEqual(readF32(safetensorsBytes, want));
      }
      // The rest of the loader takes the entries unchanged: every slot resolves to the same tensor.
      const slots = (resolved: ReturnType<typeof checkWeights>): [unknown, string | null][] =>
        [...resolved].map(([slot, r]) => [slot, r.entry?.name ?? null]);
      expect(slots(checkWeights(config, entries, 'pytorch_model.bin'))).toEqual(slots(checkWeights(config, safetensors, 'model.safetensors')));
    });

    it(`torch ${v}: every dtype, offsets, tied weights, parameters, zero-dim and empty tensors`, () => {
      const bytes = fixture(`kinds-${v}.pt`);
      const want = JSON.parse(readFileSync(new URL(`kinds-${v}.json`, DIR), 'utf8')) as
        Record<string, { dtype: string; shape: number[]; hex: string }>;
      const entries = parse(bytes);
      expect([...entries.keys()]).toEqual(Object.keys(want)); // the state dict's order
      for (const [name, w] of Object.entries(want)) {
        const e = entries.get(name)!;
        expect({ dtype: e.dtype, shape: e.shape, hex: hex(bytes.subarray(e.begin, e.end)) }, name).toEqual(w);
      }
      const e = (name: string): { begin: number; end: number } => entries.get(name)!;
      // One storage under several names: the same bytes, whatever the shape.
      expect(e('tied.b')).toMatchObject({ begin: e('tied.a').begin, end: e('tied.a').end });
      expect(e('tied.flat')).toMatchObject({ begin: e('tied.a').begin, end: e('tied.a').end, shape: [6] });
      // Slices of f32's storage: row 2 starts 10 floats in.
      expect(e('offset.row').begin).toBe(e('f32').begin + 40);
      expect([...readF32(bytes, entries.get('offset.rows')!)]).toEqual([...readF32(bytes, entries.get('f32')!)].slice(5, 15));
      expect(entries.get('scalar')).toMatchObject({ shape: [], dtype: 'F32' });
      expect([...readF32(bytes, entries.get('scalar')!)]).toEqual([2.5]);
      expect(e('empty').end).toBe(e('empty').begin);
      expect(entries.get('bn.num_batches_tracked')).toMatchObject({ shape: [], dtype: 'I64' });
    });
  }

  it('torch 2 only: _rebuild_tensor_v3 dtypes and _rebuild_parameter_with_state', () => {
    const entries = parse(fixture('kinds-2.13.pt'));
    expect(['u16', 'u32', 'u64', 'f8_e4m3', 'f8_e5m2', 'param.with_state'].map((n) => entries.get(n)!.dtype))
      .toEqual(['U16', 'U32', 'U64', 'F8_E4M3', 'F8_E5M2', 'F32']);
  });

  it('pickle protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE, SHORT_BINUNICODE)', () => {
    const bytes = fixture('protocol4-2.13.pt');
    const entries = parse(bytes);
    expect([...readF32(bytes, entries.get('a')!)]).toEqual([1, 1]);
    const b = entries.get('b')!;
    expect(b).toMatchObject({ dtype: 'I64', shape: [3] });
    expect([...new BigInt64Array(bytes.slice(b.begin, b.end).buffer)]).toEqual([0n, 1n, 2n]);
  });

  it('isTorchZip: every torch.save zip, and nothing else', () => {
    for (const name of readdirSync(DIR).filter((n) => n.endsWith('.pt') && !n.startsWith('legacy'))) {
      expect(isTorchZip(fixture(name)), name).toBe(true);
    }
    expect(isTorchZip(fixture('legacy-2.13.pt'))).toBe(false);
    expect(isTorchZip(new Uint8Array(readFileSync(new URL('model.safetensors', SOURCE))))).toBe(false);
    expect(isTorchZip(writeZip([{ name: 'notes/readme.txt', data: new Uint8Array(3) }]))).toBe(false);
    expect(isTorchZip(fixture('model-2.13.pt').subarray(0, 40))).toBe(false); // cut inside the first name
    expect(isTorchZip(new Uint8Array(0))).toBe(false);
  });
});

describe('parseTorchZip: what is not read', () => {
  it('the legacy format is UNSUPPORTED, saying what it is and how to save it again', () => {
    for (const v of VERSIONS) {
      const message = errorOf(() => parseTorchZip(fixture(`legacy-${v}.pt`), 'old.pt'), 'UNSUPPORTED');
      expect(message).toMatch(/^old\.pt: this is PyTorch's legacy torch\.save format \(torch < 1\.6, or _use_new_zipfile_serialization=False/);
      expect(message).toMatch(/magic number 0x1950a86a20f9469cfc6c/);
      expect(message).toMatch(/_use_new_zipfile_serialization=True.*or save it as safetensors/);
    }
  });

  it('a non-contiguous tensor is UNSUPPORTED, naming it', () => {
    for (const v of VERSIONS) {
      expect(refused(fixture(`noncontiguous-${v}.pt`), 'UNSUPPORTED')).toBe('pytorch_model.bin: data.pkl: tensor "transposed" has ' +
        'strides [1, 3] for size [3, 2]: not row-major (a transposed or strided view?), which is not read; save tensor.contiguous() instead');
    }
    expect(refused(archive(8, { strided: { size: [4], stride: [2] } }), 'UNSUPPORTED')).toMatch(/tensor "strided" has strides \[2\]/);
    // Strides of size-1 dims do not matter, nor any stride of an empty tensor: both are contiguous.
    expect(parse(archive(8, { a: { size: [2, 1, 4], stride: [4, 99, 1] }, b: { size: [0, 3], stride: [7, 5] } })).get('a'))
      .toMatchObject({ shape: [2, 1, 4] });
  });

  it('a lazy negative bit, big-endian bytes, compressed entries are UNSUPPORTED', () => {
    expect(refused(fixture('neg-view-2.13.pt'), 'UNSUPPORTED')).toMatch(/tensor "neg" has a lazy conjugate or negative bit set/);
    expect(refused(fixture('bigendian.pt'), 'UNSUPPORTED')).toMatch(/its tensors are big-endian \(kinds-2\.13\/byteorder says "big"/);
    expect(refused(fixture('deflated.pt'), 'UNSUPPORTED')).toMatch(/zip entry "kinds-2\.13\/data\.pkl" is compressed \(deflate\)/);
  });

  it('torch\'s other tensor kinds are UNSUPPORTED, saying what they are', () => {
    const call = (module: string, name: string): Uint8Array =>
      torchArchive(pickle(op.proto(), op.global(module, name), op.emptyTuple, op.reduce, op.stop));
    expect(refused(call('torch._utils', '_rebuild_qtensor'), 'UNSUPPORTED'))
      .toBe('pytorch_model.bin: data.pkl uses torch._utils._rebuild_qtensor: it holds quantized tensors, which are not read');
    expect(refused(call('torch', 'ComplexFloatStorage'), 'UNSUPPORTED')).toMatch(/torch\.ComplexFloatStorage: it holds complex tensors/);
    expect(refused(call('torch._tensor', '_rebuild_from_type_v2'), 'UNSUPPORTED')).toMatch(/tensor subclasses/);
  });

  it('a checkpoint around a state dict is refused, naming the state dict', () => {
    for (const v of VERSIONS) {
      expect(refused(fixture(`checkpoint-${v}.pt`))).toBe('pytorch_model.bin: data.pkl: "epoch" is the int 5, not a tensor: ' +
        'a state dict holds only tensors. This is a checkpoint with a state dict under "model_state_dict": ' +
        'save that alone, torch.save(checkpoint["model_state_dict"], path)');
    }
  });

  it('a whole module (torch.save(model)) is refused, naming its class', () => {
    for (const v of VERSIONS) {
      expect(refused(fixture(`module-${v}.pt`))).toBe('pytorch_model.bin: data.pkl imports torch.nn.modules.linear.Linear, ' +
        'which a state dict never needs: refused (a whole module was saved, torch.save(model): save its state dict instead, ' +
        'torch.save(model.state_dict(), path))');
    }
  });

  it('the top object must be a dict of tensors by string keys', () => {
    const top = (...body: Uint8Array[]): string => refused(torchArchive(pickle(op.proto(), ...body, op.stop)));
    expect(top(op.emptyList)).toBe('pytorch_model.bin: data.pkl holds a list of 0, not a state dict (a dict of tensors by name)');
    expect(top(op.none)).toMatch(/data\.pkl holds None, not a state dict/);
    expect(top(op.emptyDict, op.int(3), op.str('x'), op.setitem)).toBe('pytorch_model.bin: data.pkl: state dict key the int 3 is not a string');
    expect(top(op.emptyDict, op.str('w'), op.emptyTuple, op.setitem)).toMatch(/"w" is a tuple of 0, not a tensor: a state dict holds only tensors$/);
    expect(parse(torchArchive(pickle(op.proto(), op.emptyDict, op.stop))).size).toBe(0); // empty: the model check says what is missing
  });
});

describe('parseTorchZip: hostile pickles are refused, and nothing runs', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const HOSTILE: Record<string, string> = {
    'os-system.pt': 'posix.system', // what torch.save writes for os.system on Linux
    'os-system-global.pt': 'os.system',
    'builtins-eval.pt': 'builtins.eval',
    'builtins-getattr.pt': 'builtins.getattr',
    'builtin-exec-py2.pt': '__builtin__.exec',
    'subprocess-popen.pt': 'subprocess.Popen',
    'nested-eval.pt': 'builtins.eval',
    'js-process-exit.pt': 'globalThis.process.exit',
    'torch-hub-load.pt': 'torch.hub.load',
  };

  it('every hostile fixture is BAD_FILE naming its global', () => {
    expect(readdirSync(new URL('hostile/', DIR)).sort()).toEqual(Object.keys(HOSTILE).sort());
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    for (const [name, global] of Object.entries(HOSTILE)) {
      expect(errorOf(() => parseTorchZip(fixture(`hostile/${name}`), name), 'BAD_FILE'))
        .toBe(`${name}: data.pkl imports ${global}, which a state dict never needs: refused`);
    }
    expect(exit).not.toHaveBeenCalled();
    expect(existsSync(PWNED)).toBe(false);
  });

  it('names that JS would resolve to something are only names: no lookup reaches a JS object', () => {
    const names: [string, string][] = [
      ['globalThis', 'process'], ['globalThis.process', 'exit'], ['process', 'exit'], ['globalThis', 'eval'],
      ['__proto__', 'constructor'], ['constructor', 'constructor'], ['Object', 'prototype'], ['Function', 'constructor'],
      ['collections', '__proto__'], ['collections.OrderedDict', 'constructor'], ['collections.OrderedDict', 'call'],
      ['torch._utils', 'hasOwnProperty'], ['torch', 'toString'], ['torch', 'valueOf'], ['', ''], ['require', 'child_process'],
      ['import', 'fs'], ['torch._utils._rebuild_tensor_v2', '__proto__'],
    ];
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    for (const [module, name] of names) {
      const args = tuple(op.str('1'));
      const byGlobal = pickle(op.proto(), op.global(module, name), args, op.reduce, op.stop);
      const byStack = pickle(op.proto(4), op.str(module), op.str(name), op.stackGlobal, args, op.reduce, op.stop);
      for (const p of [byGlobal, byStack]) {
        const shown = /^[\w.]{1,200}$/.test(`${module}.${name}`) ? `${module}.${name}` : JSON.stringify(`${module}.${name}`);
        expect(refused(torchArchive(p))).toBe(`pytorch_model.bin: data.pkl imports ${shown}, which a state dict never needs: refused`);
      }
    }
    expect(exit).not.toHaveBeenCalled();
  });

  it('a whitelisted constant is never called, and nothing but a dict gets attributes', () => {
    // torch.FloatStorage(2**40) would allocate 4 TiB in torch: here it is a name, not a function.
    const huge = pickle(op.proto(), op.global('torch', 'FloatStorage'), tuple(op.int(2 ** 30)), op.reduce, op.stop);
    expect(refused(torchArchive(huge))).toBe('pytorch_model.bin: data.pkl: byte 29 (REDUCE): calls torch.FloatStorage, ' +
      'which is not a function it may call: refused');
    const build = pickle(op.proto(), op.global('torch', 'FloatStorage'), op.emptyDict, op.build, op.stop);
    expect(refused(torchArchive(build))).toMatch(/\(BUILD\): sets attributes of torch\.FloatStorage from a dict of 0: only a dict's are set/);
    const notStorage = pickle(op.proto(), tuple(op.str('module'), op.str('os')), op.persid, op.stop);
    expect(refused(torchArchive(notStorage))).toMatch(/persistent id a tuple of 2 is not \('storage', a storage class, key, location, numel\): refused/);
  });
});

describe('parseTorchZip: archive and tensor checks', () => {
  it('a tensor with a storage offset reads its own slice', () => {
    const bytes = archive(10, { tail: { size: [2, 2], offset: 6 }, all: {} });
    const entries = parse(bytes);
    expect([...readF32(bytes, entries.get('tail')!)]).toEqual([6, 7, 8, 9]);
    expect([...readF32(bytes, entries.get('all')!)]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('a tensor must lie inside its storage', () => {
    expect(refused(archive(10, { t: { size: [2, 2], offset: 7 } }))).toBe('pytorch_model.bin: data.pkl: tensor "t" of size [2, 2] ' +
      'at offset 7 runs past its storage "0" (40 bytes)');
    expect(refused(archive(10, { t: { size: [11] } }))).toMatch(/tensor "t" of size \[11\] at offset 0 runs past/);
    expect(refused(archive(10, { t: { size: [2 ** 26, 2 ** 26, 2 ** 26] } }))).toMatch(/runs past its storage/);
    expect(refused(archive(10, { t: { size: [3], offset: 11 } }))).toMatch(/runs past its storage/);
    expect(parse(archive(10, { t: { size: [0], offset: 10 } })).get('t')).toMatchObject({ shape: [0] });
  });

  it('persistent ids must name a record of the right size, one type per key', () => {
    const t = (key: string, numel: number, storage?: string): Uint8Array => tensorPickle({ key, numel, size: [1], storage });
    const bad = (items: Record<string, Uint8Array>, storages: Record<string, Uint8Array>): string =>
      refused(torchArchive(stateDictPickle(items), storages));
    expect(bad({ a: t('7', 1) }, { 0: floats(1) })).toBe('pytorch_model.bin: data.pkl: storage "7" has no record archive/data/7 in the archive');
    expect(bad({ a: t('0', 2) }, { 0: floats(1) })).toBe('pytorch_model.bin: archive/data/0 holds 4 bytes, but data.pkl says 2 ' +
      'elements of torch.FloatStorage (8 bytes)');
    expect(bad({ a: t('0', 1), b: t('0', 2, 'torch.IntStorage') }, { 0: floats(1) }))
      .toMatch(/storage "0" is both torch\.FloatStorage and torch\.IntStorage/);
    expect(bad({ a: t('0', 4, 'torch.storage.UntypedStorage') }, { 0: floats(1) }))
      .toMatch(/tensor "a": _rebuild_tensor_v2 of an untyped storage, which carries no dtype/);
  });

  it('rebuild arguments are checked, naming the tensor or the function', () => {
    const rebuild = (...args: Uint8Array[]): string => refused(torchArchive(stateDictPickle({
      w: pickle(op.global('torch._utils', '_rebuild_tensor_v2'), tuple(...args), op.reduce),
    })));
    expect(rebuild(op.int(1))).toMatch(/\(REDUCE\): torch\._utils\._rebuild_tensor_v2: takes 6 or 7 arguments, got 1$/);
    const six = [op.none, op.int(0), tuple(), tuple(), op.newFalse, op.none];
    expect(rebuild(...six)).toBe('pytorch_model.bin: data.pkl: tensor "w" has storage None, not one of the archive');
    const param = pickle(op.global('torch._utils', '_rebuild_parameter'), tuple(op.none), op.reduce);
    expect(refused(torchArchive(stateDictPickle({ p: param })))).toMatch(/_rebuild_parameter: takes 3 arguments, got 1$/);
    const pid = tuple(op.str('storage'), op.global('torch', 'FloatStorage'), op.str('0'), op.str('cpu'), op.int(4));
    const tensor = (offset: Uint8Array, size: Uint8Array, stride: Uint8Array): string => refused(torchArchive(stateDictPickle({
      w: pickle(op.global('torch._utils', '_rebuild_tensor_v2'), tuple(pid, op.persid, offset, size, stride, op.newFalse, op.none), op.reduce),
    }), { 0: floats(4) }));
    expect(tensor(op.int(-1), tuple(), tuple())).toMatch(/tensor "w" has storage offset the int -1: must be a non-negative integer/);
    expect(tensor(op.int(0), tuple(op.str('4')), tuple(op.int(1)))).toMatch(/tensor "w" has size a tuple of 1: must be a tuple of non-negative integers/);
    expect(tensor(op.int(0), tuple(op.int(4)), tuple())).toMatch(/tensor "w" has 1 sizes but 0 strides/);
  });

  it('the archive needs one data.pkl, a version, and a byteorder that says little', () => {
    const pkl = stateDictPickle({});
    expect(refused(torchArchive(pkl, {}, { version: null }))).toBe('pytorch_model.bin: a zip archive without archive/version: ' +
      'not one that torch.save wrote');
    expect(parse(torchArchive(pkl, {}, { version: null, '.data/version': '3\n' })).size).toBe(0);
    expect(refused(torchArchive(pkl, {}, { version: 'three' }))).toMatch(/archive\/version holds "three", not a version number/);
    expect(refused(torchArchive(pkl, {}, { byteorder: 'middle' }))).toMatch(/archive\/byteorder holds "middle", not "little" or "big"/);
    expect(parse(torchArchive(pkl, {}, { byteorder: null })).size).toBe(0); // torch 1.x wrote none
    expect(refused(writeZip([{ name: 'model/weights.bin', data: pkl }]))).toBe('pytorch_model.bin: a zip archive without ' +
      '<archive>/data.pkl: not one that torch.save wrote');
    const two = writeZip([{ name: 'a/data.pkl', data: pkl }, { name: 'b/data.pkl', data: pkl }]);
    expect(refused(two)).toMatch(/a zip archive with 2 pickles \(a\/data\.pkl, b\/data\.pkl\): torch\.save writes one/);
  });

  it('reads an archive whose directory is zip64, as torch writes past 4 GiB', () => {
    const bytes = fixture('kinds-2.13.pt');
    const records = [...readZip(bytes, 'kinds').values()].map((e) => ({ name: e.name, data: bytes.slice(e.begin, e.end) }));
    const wide = writeZip(records, { zip64: true });
    const want = parse(bytes);
    const got = parse(wide);
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [name, e] of got) expect(hex(wide.subarray(e.begin, e.end)), name).toBe(hex(bytes.subarray(want.get(name)!.begin, want.get(name)!.end)));
  });

  it('a file cut short at any length is a WasmformerError naming the file', () => {
    const bytes = fixture('kinds-1.13.pt');
    for (let cut = 0; cut < bytes.length; cut++) {
      let code = '';
      try {
        parseTorchZip(bytes.subarray(0, cut), 'cut.pt');
      } catch (e) {
        expect((e as Error).message).toMatch(/^cut\.pt: /);
        code = (e as { code: string }).code;
      }
      expect(code, `cut at ${cut}`).toBe('BAD_FILE');
    }
  });
});
