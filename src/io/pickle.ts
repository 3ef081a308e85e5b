import { WasmformerError } from '../errors.js';

/** A Python tuple. */
export class Tuple {
  constructor(readonly items: readonly unknown[]) {}
}

/** A Python list: APPEND and APPENDS add to it. */
export class List {
  readonly items: unknown[] = [];
}

/** A Python dict (or OrderedDict): insertion order kept, a later SETITEM of a key replaces it. */
export class Dict {
  private map: Map<unknown, unknown> | null = null;
  /** Made when first asked for: a hostile pickle's million empty dicts cost no Maps. */
  get items(): Map<unknown, unknown> {
    return (this.map ??= new Map());
  }
}

/** A Python float, kept apart from ints so that 2.0 is never taken for a size. */
export class Float {
  constructor(readonly value: number) {}
}

/**
 * A function a GLOBAL may stand for, written in JS by the caller: the only code REDUCE can run.
 * `fail` throws BAD_FILE naming the file, the opcode's offset and the function.
 */
export class Callable {
  constructor(
    readonly name: string,
    readonly call: (args: readonly unknown[], fail: (message: string) => never) => unknown,
  ) {}
}

/** What the caller gives the unpickler: the only two ways a pickle reaches outside itself. */
export interface PickleHooks {
  /** What GLOBAL (or STACK_GLOBAL) `module.name` stands for: a Callable, or a constant; throws to refuse it. */
  readonly resolve: (module: string, name: string) => unknown;
  /** What a persistent id (BINPERSID) stands for; throws to refuse it. */
  readonly persistentLoad: (pid: unknown) => unknown;
}

/** Every pickle opcode (Python's pickletools names), so that an error names even those not run. */
const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32, FLOAT: 0x46, INT: 0x49, BININT: 0x4a,
  BININT1: 0x4b, LONG: 0x4c, BININT2: 0x4d, NONE: 0x4e, PERSID: 0x50, BINPERSID: 0x51, REDUCE: 0x52,
  STRING: 0x53, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, UNICODE: 0x56, BINUNICODE: 0x58, APPEND: 0x61,
  BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, EMPTY_DICT: 0x7d, APPENDS: 0x65, GET: 0x67, BINGET: 0x68,
  INST: 0x69, LONG_BINGET: 0x6a, LIST: 0x6c, EMPTY_LIST: 0x5d, OBJ: 0x6f, PUT: 0x70, BINPUT: 0x71,
  LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47,
  PROTO: 0x80, NEWOBJ: 0x81, EXT1: 0x82, EXT2: 0x83, EXT4: 0x84, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b, BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90,
  FROZENSET: 0x91, NEWOBJ_EX: 0x92, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95, BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97, READONLY_BUFFER: 0x98,
} as const;

const OP_NAMES = new Map<number, string>(Object.entries(OP).map(([name, code]) => [code, name]));

/**
 * Values a pickle may make (pushes and memo entries): a state dict makes under 30 per tensor, so
 * this is over 30k tensors. It bounds the memory a hostile pickle can make the reader hold (some
 * 100 MB at most).
 */
const MAX_VALUES = 1_000_000;
/** () is one object, as in Python: every tensor's pickle makes one. */
const EMPTY_TUPLE = new Tuple([]);
/** Nested MARKs: a state dict nests 3, a checkpoint a few more. */
const MAX_MARK_DEPTH = 256;
/** A GLOBAL's module or name line: Python's dotted names are far shorter. */
const MAX_LINE = 1000;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Runs a pickle (protocol 2 to 5) on a machine that can make only Python's plain values (None,
 * bools, ints, floats, strings, tuples, lists, dicts) and whatever `hooks` give for a GLOBAL or a
 * persistent id: REDUCE calls nothing but a Callable that `hooks.resolve` returned, BUILD sets
 * nothing. Errors are BAD_FILE, prefixed with `where` and naming the opcode and its offset.
 * Returns the object STOP finds.
 */
export function unpickle(bytes: Uint8Array, where: string, hooks: PickleHooks): unknown {
  return new Unpickler(bytes, where, hooks).run();
}

/** A short rendering of a value from a pickle, for an error message. */
export function describeValue(value: unknown): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number' || typeof value === 'bigint') return `the int ${value}`;
  if (typeof value === 'string') return `the str ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (value instanceof Float) return `the float ${value.value}`;
  if (value instanceof Tuple) return `a tuple of ${value.items.length}`;
  if (value instanceof List) return `a list of ${value.items.length}`;
  if (value instanceof Dict) return `a dict of ${value.items.size}`;
  if (value instanceof Callable) return value.name;
  // The caller's own values (hooks' results) say what they are.
  return String(value);
}

class Unpickler {
  private stack: unknown[] = [];
  private readonly marks: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private at = 0; // the next byte to read
  private op = 0; // where the current opcode is
  private values = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly where: string, private readonly hooks: PickleHooks) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  run(): unknown {
    while (this.at < this.bytes.length) {
      this.op = this.at;
      if (this.step(this.bytes[this.at++])) return this.pop();
    }
    return this.fail(`ends at byte ${this.bytes.length} without STOP: truncated?`, false);
  }

  private fail(message: string, atOpcode = true): never {
    const code = this.bytes[this.op];
    const place = atOpcode ? `byte ${this.op} (${OP_NAMES.get(code) ?? `0x${code.toString(16)}`}): ` : '';
    throw new WasmformerError('BAD_FILE', `${this.where}: ${place}${message}`);
  }

  /** Runs one opcode; true at STOP. */
  private step(op: number): boolean {
    switch (op) {
      case OP.PROTO: {
        const protocol = this.u8();
        if (protocol < 2 || protocol > 5) this.fail(`pickle protocol ${protocol}: only 2 to 5 are read (torch.save writes 2)`);
        break;
      }
      case OP.FRAME: this.take(8); break; // frames only group opcodes for buffered reading
      case OP.STOP: return true;
      case OP.MARK:
        if (this.marks.length >= MAX_MARK_DEPTH) this.fail(`more than ${MAX_MARK_DEPTH} nested MARKs`);
        this.marks.push(this.stack);
        this.stack = [];
        break;
      case OP.NONE: this.push(null); break;
      case OP.NEWTRUE: this.push(true); break;
      case OP.NEWFALSE: this.push(false); break;
      case OP.BININT: this.push(this.view.getInt32(this.take(4), true)); break;
      case OP.BININT1: this.push(this.u8()); break;
      case OP.BININT2: this.push(this.view.getUint16(this.take(2), true)); break;
      case OP.LONG1: this.push(this.long(this.u8())); break;
      case OP.BINFLOAT: this.push(new Float(this.view.getFloat64(this.take(8), false))); break;
      case OP.BINUNICODE: this.push(this.text(this.view.getUint32(this.take(4), true))); break;
      case OP.SHORT_BINUNICODE: this.push(this.text(this.u8())); break;
      case OP.EMPTY_TUPLE: this.push(EMPTY_TUPLE); break;
      case OP.TUPLE: this.push(new Tuple(this.popMark())); break;
      case OP.TUPLE1: this.push(new Tuple(this.popN(1))); break;
      case OP.TUPLE2: this.push(new Tuple(this.popN(2))); break;
      case OP.TUPLE3: this.push(new Tuple(this.popN(3))); break;
      case OP.EMPTY_LIST: this.push(new List()); break;
      case OP.APPEND: this.append(this.popN(1)); break;
      case OP.APPENDS: this.append(this.popMark()); break;
      case OP.EMPTY_DICT: this.push(new Dict()); break;
      case OP.SETITEM: this.setItems(this.popN(2)); break;
      case OP.SETITEMS: this.setItems(this.popMark()); break;
      case OP.GLOBAL: {
        const module = this.line();
        this.push(this.hooks.resolve(module, this.line()));
        break;
      }
      case OP.STACK_GLOBAL: {
        const [module, name] = this.popN(2);
        if (typeof module !== 'string' || typeof name !== 'string') {
          this.fail(`module and name must be strings, got ${describeValue(module)} and ${describeValue(name)}`);
        }
        this.push(this.hooks.resolve(module, name));
        break;
      }
      case OP.REDUCE: this.reduce(); break;
      case OP.BUILD: this.build(); break;
      case OP.BINPERSID: this.push(this.hooks.persistentLoad(this.pop())); break;
      case OP.BINPUT: this.put(this.u8()); break;
      case OP.LONG_BINPUT: this.put(this.view.getUint32(this.take(4), true)); break;
      case OP.MEMOIZE: this.put(this.memo.size); break;
      case OP.BINGET: this.get(this.u8()); break;
      case OP.LONG_BINGET: this.get(this.view.getUint32(this.take(4), true)); break;
      default: {
        const name = OP_NAMES.get(op);
        this.fail(name === undefined ? `0x${op.toString(16)} is not a pickle opcode` : 'an opcode a state dict never uses: refused');
      }
    }
    return false;
  }

  /** Where the next n bytes begin; they must be in the pickle. */
  private take(n: number): number {
    const at = this.at;
    if (at + n > this.bytes.length) this.fail(`needs ${n} bytes after it, but the pickle ends at byte ${this.bytes.length}: truncated?`);
    this.at += n;
    return at;
  }

  private u8(): number {
    return this.bytes[this.take(1)];
  }

  /** A little-endian two's-complement integer of n bytes: a number when it is safe, else a bigint. */
  private long(n: number): number | bigint {
    const at = this.take(n);
    let value = 0n;
    for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.bytes[at + i]);
    if (n > 0 && this.bytes[at + n - 1] & 0x80) value -= 1n << BigInt(8 * n);
    const safe = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
    return safe ? Number(value) : value;
  }

  private text(n: number): string {
    const at = this.take(n);
    try {
      return UTF8.decode(this.bytes.subarray(at, at + n));
    } catch {
      return this.fail('a string that is not valid UTF-8');
    }
  }

  /** A GLOBAL's line, up to its newline. */
  private line(): string {
    const length = this.bytes.subarray(this.at, this.at + MAX_LINE + 1).indexOf(0x0a);
    if (length < 0) this.fail(`a module or name line that does not end within ${MAX_LINE} bytes`);
    return this.text(length + 1).slice(0, -1);
  }

  private push(value: unknown): void {
    this.spend();
    this.stack.push(value);
  }

  private spend(): void {
    if (++this.values > MAX_VALUES) this.fail(`makes more than ${MAX_VALUES} values, far more than a state dict needs: refused`);
  }

  private pop(): unknown {
    if (this.stack.length === 0) this.fail(this.marks.length > 0 ? 'nothing on the stack since the last MARK' : 'the stack is empty');
    return this.stack.pop();
  }

  private popN(n: number): unknown[] {
    if (this.stack.length < n) this.fail(`needs ${n} values on the stack, there are ${this.stack.length}`);
    return this.stack.splice(this.stack.length - n, n);
  }

  /** The values since the last MARK, which is removed. */
  private popMark(): unknown[] {
    const items = this.stack;
    this.stack = this.marks.pop() ?? this.fail('no MARK to take values from');
    return items;
  }

  private top(): unknown {
    if (this.stack.length === 0) this.fail('the stack is empty');
    return this.stack[this.stack.length - 1];
  }

  private append(items: unknown[]): void {
    const list = this.top();
    if (!(list instanceof List)) this.fail(`appends to ${describeValue(list)}, not a list`);
    for (const item of items) list.items.push(item);
  }

  private setItems(items: unknown[]): void {
    const dict = this.top();
    if (!(dict instanceof Dict)) this.fail(`sets items of ${describeValue(dict)}, not a dict`);
    if (items.length % 2 !== 0) this.fail(`an odd number of keys and values (${items.length})`);
    for (let i = 0; i < items.length; i += 2) dict.items.set(items[i], items[i + 1]);
  }

  /** Calls a Callable from `hooks.resolve`, and nothing else, with a tuple of arguments. */
  private reduce(): void {
    const [fn, args] = this.popN(2);
    if (!(fn instanceof Callable)) this.fail(`calls ${describeValue(fn)}, which is not a function it may call: refused`);
    if (!(args instanceof Tuple)) this.fail(`calls ${fn.name} with ${describeValue(args)}, not a tuple of arguments`);
    this.push(fn.call(args.items, (message) => this.fail(`${fn.name}: ${message}`)));
  }

  /**
   * BUILD sets an object's attributes: in a state dict, only an OrderedDict's (its `_metadata`,
   * the modules' versions), which nothing here needs, so they are dropped. Anything else is refused.
   */
  private build(): void {
    const [state] = this.popN(1);
    const target = this.top();
    if (!(target instanceof Dict) || !(state instanceof Dict)) {
      this.fail(`sets attributes of ${describeValue(target)} from ${describeValue(state)}: only a dict's are set in a state dict`);
    }
  }

  private put(index: number): void {
    this.spend();
    this.memo.set(index, this.top());
  }

  private get(index: number): void {
    if (!this.memo.has(index)) this.fail(`memo ${index} was never stored`);
    this.push(this.memo.get(index));
  }
}
