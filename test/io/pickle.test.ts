import { describe, expect, it } from 'vitest';
import { Callable, Dict, Float, List, Tuple, describeValue, unpickle, type PickleHooks } from '../../dist/io/pickle.js';
import { errorOf } from '../expect-error.js';
import { op, pickle, tuple } from './write-torch.js';

const WHERE = 'm.pt: data.pkl';
const bytes = (...b: number[]): Uint8Array => Uint8Array.of(...b);

/** Hooks that resolve nothing: every GLOBAL and persistent id is refused, naming it. */
const NONE: PickleHooks = {
  resolve: (module, name) => {
    throw new Error(`resolve ${module}.${name}`);
  },
  persistentLoad: () => {
    throw new Error('persistentLoad');
  },
};

const run = (p: Uint8Array, hooks: PickleHooks = NONE): unknown => unpickle(p, WHERE, hooks);
const bad = (p: Uint8Array, hooks: PickleHooks = NONE): string => errorOf(() => run(p, hooks), 'BAD_FILE');
/** A protocol 2 pickle of one value. */
const value = (...body: Uint8Array[]): unknown => run(pickle(op.proto(), ...body, op.stop));

describe('unpickle', () => {
  it('makes plain values', () => {
    expect(value(op.none)).toBe(null);
    expect(value(bytes(0x88))).toBe(true);
    expect(value(bytes(0x89))).toBe(false);
    expect(value(op.int(7))).toBe(7);
    expect(value(bytes(0x4d, 0x34, 0x12))).toBe(0x1234); // BININT2
    expect(value(op.int(-5))).toBe(-5); // BININT
    expect(value(bytes(0x8a, 0))).toBe(0); // LONG1 of no bytes
    expect(value(bytes(0x8a, 2, 0xff, 0x7f))).toBe(32767);
    expect(value(bytes(0x8a, 1, 0xff))).toBe(-1);
    expect(value(op.int(2 ** 40))).toBe(2 ** 40);
    expect(value(bytes(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1))).toBe(2n ** 64n); // beyond 2^53: a bigint
    expect(value(bytes(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0))).toEqual(new Float(1.5)); // BINFLOAT is big-endian
    expect(value(op.str('héllo'))).toBe('héllo');
    expect(value(bytes(0x8c, 2, 0x68, 0x69))).toBe('hi'); // SHORT_BINUNICODE
  });

  it('makes tuples, lists and dicts, and shares memoized values', () => {
    const t = value(tuple(op.int(1), op.str('a'))) as Tuple;
    expect(t).toBeInstanceOf(Tuple);
    expect(t.items).toEqual([1, 'a']);
    expect((value(op.int(1), op.int(2), op.int(3), bytes(0x87)) as Tuple).items).toEqual([1, 2, 3]); // TUPLE3
    const list = value(op.emptyList, op.int(1), bytes(0x61), op.mark, op.int(2), op.int(3), bytes(0x65)) as List;
    expect(list.items).toEqual([1, 2, 3]);
    const dict = value(op.emptyDict, op.mark, op.str('a'), op.int(1), op.str('b'), op.int(2), bytes(0x75),
      op.str('a'), op.int(3), op.setitem) as Dict;
    expect([...dict.items]).toEqual([['a', 3], ['b', 2]]); // a later SETITEM replaces, in the first place
    // BINPUT / BINGET, LONG_BINPUT / LONG_BINGET, MEMOIZE: the same object, not a copy.
    const shared = value(op.emptyList, bytes(0x71, 5), bytes(0x72, 9, 0, 1, 0), bytes(0x94),
      bytes(0x68, 5), bytes(0x6a, 9, 0, 1, 0), bytes(0x68, 2), bytes(0x87)) as Tuple; // MEMOIZE's index is the memo's size
    expect(shared.items[0]).toBe(shared.items[1]);
    expect(shared.items[1]).toBe(shared.items[2]);
    // Protocol 4 frames only group opcodes.
    expect(run(pickle(op.proto(4), bytes(0x95, 2, 0, 0, 0, 0, 0, 0, 0), op.int(9), op.stop))).toBe(9);
  });

  it('a GLOBAL is what resolve gives, and REDUCE calls only a Callable from it', () => {
    const calls: unknown[][] = [];
    const hooks: PickleHooks = {
      resolve: (module, name) => (name === 'f' ? new Callable(`${module}.${name}`, (args) => {
        calls.push([...args]);
        return 'called';
      }) : `${module}.${name}`),
      persistentLoad: (pid) => ({ pid }),
    };
    expect(run(pickle(op.proto(), op.global('m', 'f'), tuple(op.int(1), op.str('x')), op.reduce, op.stop), hooks)).toBe('called');
    expect(calls).toEqual([[1, 'x']]);
    expect(run(pickle(op.proto(4), op.str('m'), op.str('c'), op.stackGlobal, op.stop), hooks)).toBe('m.c');
    expect(run(pickle(op.proto(), op.str('id'), op.persid, op.stop), hooks)).toEqual({ pid: 'id' });
    // A constant from resolve, or any value the pickle made, is not callable.
    expect(bad(pickle(op.proto(), op.global('m', 'c'), op.emptyTuple, op.reduce, op.stop), hooks))
      .toBe('m.pt: data.pkl: byte 8 (REDUCE): calls the str "m.c", which is not a function it may call: refused');
    expect(bad(pickle(op.proto(), op.emptyDict, op.emptyTuple, op.reduce, op.stop), hooks)).toMatch(/calls a dict of 0, which is not a function/);
    expect(bad(pickle(op.proto(), op.global('m', 'f'), op.emptyList, op.reduce, op.stop), hooks))
      .toMatch(/\(REDUCE\): calls m\.f with a list of 0, not a tuple of arguments/);
    const failing = new Callable('m.g', (_args, fail) => fail('no, thanks'));
    expect(bad(pickle(op.proto(), op.global('m', 'g'), op.emptyTuple, op.reduce, op.stop), { ...hooks, resolve: () => failing }))
      .toBe('m.pt: data.pkl: byte 8 (REDUCE): m.g: no, thanks');
    expect(calls).toHaveLength(1);
  });

  it('BUILD sets nothing, and only on a dict', () => {
    expect(value(op.emptyDict, op.emptyDict, op.build)).toBeInstanceOf(Dict);
    expect(bad(pickle(op.proto(), op.emptyList, op.emptyDict, op.build, op.stop)))
      .toBe('m.pt: data.pkl: byte 4 (BUILD): sets attributes of a list of 0 from a dict of 0: only a dict\'s are set in a state dict');
    expect(bad(pickle(op.proto(), op.emptyDict, op.emptyTuple, op.build, op.stop))).toMatch(/from a tuple of 0/);
  });

  it('refuses every opcode it does not run, naming it and its offset', () => {
    const refused: [number, string][] = [
      [0x81, 'NEWOBJ'], [0x92, 'NEWOBJ_EX'], [0x69, 'INST'], [0x6f, 'OBJ'], [0x82, 'EXT1'], [0x50, 'PERSID'],
      [0x53, 'STRING'], [0x30, 'POP'], [0x32, 'DUP'], [0x42, 'BINBYTES'], [0x8f, 'EMPTY_SET'], [0x97, 'NEXT_BUFFER'],
    ];
    for (const [code, name] of refused) {
      expect(bad(pickle(op.proto(), op.none, bytes(code), op.stop))).toBe(`m.pt: data.pkl: byte 3 (${name}): an opcode a state dict never uses: refused`);
    }
    expect(bad(pickle(op.proto(), bytes(0xff)))).toBe('m.pt: data.pkl: byte 2 (0xff): 0xff is not a pickle opcode');
    expect(bad(pickle(op.proto(1)))).toMatch(/byte 0 \(PROTO\): pickle protocol 1: only 2 to 5 are read/);
    expect(bad(pickle(op.proto(6)))).toMatch(/pickle protocol 6/);
  });

  it('refuses broken pickles, never reading past the end', () => {
    expect(bad(pickle(op.proto(), op.none))).toBe('m.pt: data.pkl: ends at byte 3 without STOP: truncated?');
    expect(bad(new Uint8Array(0))).toMatch(/ends at byte 0 without STOP/);
    expect(bad(pickle(op.proto(), bytes(0x58, 9, 0, 0, 0, 0x61)))).toMatch(/byte 2 \(BINUNICODE\): needs 9 bytes after it, but the pickle ends at byte 8: truncated\?$/);
    expect(bad(pickle(op.proto(), bytes(0x58, 0xff, 0xff, 0xff, 0xff)))).toMatch(/needs 4294967295 bytes/);
    expect(bad(pickle(op.proto(), bytes(0x4a, 1)))).toMatch(/\(BININT\): needs 4 bytes/);
    expect(bad(pickle(op.proto(), bytes(0x8a, 200, 1)))).toMatch(/\(LONG1\): needs 200 bytes/);
    expect(bad(pickle(op.proto(), bytes(0x58, 1, 0, 0, 0, 0xff), op.stop))).toMatch(/\(BINUNICODE\): a string that is not valid UTF-8/);
    expect(bad(pickle(op.proto(), new TextEncoder().encode('cos\nsystem')))).toMatch(/\(GLOBAL\): a module or name line that does not end within 1000 bytes/);
    expect(bad(pickle(op.proto(), op.global('m'.repeat(1001), 'x'), op.stop))).toMatch(/does not end within 1000 bytes/);
    expect(bad(pickle(op.proto(), op.stop))).toBe('m.pt: data.pkl: byte 2 (STOP): the stack is empty');
    expect(bad(pickle(op.proto(), op.mark, op.tuple, op.tuple, op.stop))).toMatch(/byte 4 \(TUPLE\): no MARK to take values from/);
    expect(bad(pickle(op.proto(), op.none, op.mark, bytes(0x85), op.stop))).toMatch(/\(TUPLE1\): needs 1 values on the stack, there are 0/);
    expect(bad(pickle(op.proto(), op.none, op.mark, op.reduce))).toMatch(/\(REDUCE\): needs 2 values/);
    expect(bad(pickle(op.proto(), op.none, op.int(1), bytes(0x61), op.stop))).toMatch(/\(APPEND\): appends to None, not a list/);
    expect(bad(pickle(op.proto(), op.emptyList, op.int(1), op.int(2), op.setitem, op.stop))).toMatch(/\(SETITEM\): sets items of a list of 0, not a dict/);
    expect(bad(pickle(op.proto(), op.emptyDict, op.mark, op.int(1), bytes(0x75), op.stop))).toMatch(/\(SETITEMS\): an odd number of keys and values \(1\)/);
    expect(bad(pickle(op.proto(), bytes(0x68, 3), op.stop))).toMatch(/byte 2 \(BINGET\): memo 3 was never stored/);
    expect(bad(pickle(op.proto(), bytes(0x71, 0)))).toMatch(/\(BINPUT\): the stack is empty/);
    expect(bad(pickle(op.proto(4), op.int(1), op.str('x'), op.stackGlobal, op.stop))).toMatch(/module and name must be strings, got the int 1 and the str "x"/);
  });

  it('limits nesting and the number of values', () => {
    expect(bad(pickle(op.proto(), new Uint8Array(257).fill(0x28)))).toMatch(/byte 258 \(MARK\): more than 256 nested MARKs/);
    expect(value(...new Array<Uint8Array>(256).fill(op.mark), op.none, ...new Array<Uint8Array>(256).fill(op.tuple))).toBeInstanceOf(Tuple);
    // 1M+ empty lists from a 1 MB pickle: refused before it holds them all.
    const start = Date.now();
    expect(bad(pickle(op.proto(), new Uint8Array(1_000_001).fill(0x5d), op.stop)))
      .toMatch(/byte 1000002 \(EMPTY_LIST\): makes more than 1000000 values, far more than a state dict needs: refused/);
    const puts = new Uint8Array(2 * 1_000_000).map((_, i) => (i % 2 === 0 ? 0x71 : 0)); // BINPUT 0, again and again
    expect(bad(pickle(op.proto(), op.none, puts, op.stop))).toMatch(/\(BINPUT\): makes more than 1000000 values/);
    expect(Date.now() - start).toBeLessThan(10_000);
  });

  it('describes values for messages, shortly', () => {
    expect(describeValue(null)).toBe('None');
    expect(describeValue('x'.repeat(100))).toBe(`the str "${'x'.repeat(40)}..."`);
    expect(describeValue(new Tuple([1, 2]))).toBe('a tuple of 2');
    expect(describeValue(new Callable('a.b', () => null))).toBe('a.b');
    expect(describeValue(3n)).toBe('the int 3');
  });
});
