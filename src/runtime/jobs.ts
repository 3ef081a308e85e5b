// A parallel kernel call as every thread sees it: a block of shared memory that says which
// kernel runs, its arguments, and how they move from one chunk of the work to the next. The
// calling thread (threads.ts) writes a job and takes chunks like any helper (helper.ts): the
// same `work` below runs on both sides, so a chunk computes the same bytes whoever takes it.
//
// Chunks are claimed, not assigned: a helper that wakes late finds fewer chunks left, or none,
// and the caller never waits for a thread that has not started. Every chunk writes its own
// columns or heads of the output, so the result is the one-thread result, bit for bit.
import type { KernelExports } from './kernels.js';

/** The kernels a job may run. */
export const enum Op {
  Matmul = 0,
  MatmulQ8 = 1,
  Attention = 2,
  AttendRows = 3,
}

/** The most arguments a job's kernel takes (attention: 17). */
const MAX_ARGS = 17;

// Int32 slots of the control block. WORK and DONE change with every chunk, so each has a cache
// line of its own; the rest are written once per job.
const WORK = 0; // (job number << 16) | next chunk to claim
const DONE = 16; // chunks of the current job finished
const SLEEPERS = 32; // helpers asleep in Atomics.wait on WORK
const HELPERS = 33; // helpers that may claim chunks: one past the last helper still working
const OP = 34;
const CHUNKS = 35;
const UNITS = 36; // the work in its smallest pieces: groups of 32 columns, or heads
const COUNT_ARG = 37; // the argument that says how many columns or heads a call does
const UNIT = 38; // columns or heads per unit
const TOTAL = 39; // the count argument's value for the whole call
const CALLER_WAITS = 40; // 1 while the caller sleeps on DONE
// Float64 slots from byte 192: the whole call's arguments, then what each unit adds to them.
const ARGS = 24;
const DELTAS = ARGS + MAX_ARGS;

/** Bytes of the control block. */
export const CONTROL_BYTES = (DELTAS + MAX_ARGS) * 8;

/** The kernels a job may run, from a thread's own instance of the module: the raw exports' signatures. */
export type Parallel = Pick<KernelExports, 'matmul' | 'matmulQ8' | 'attention' | 'attendRows'>;

/** Each Op's number of arguments. */
const ARITY = [9, 9, 17, 16];

/** Spins of an idle thread before it sleeps: about 50 µs here, longer than the gap between two kernel calls of a step. */
const SPINS = 20000;

/** The control block at byte `ptr` of a shared memory, as one thread sees it. */
export class Control {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly args = new Float64Array(MAX_ARGS); // this thread's copy of one chunk's arguments

  constructor(buffer: ArrayBufferLike, ptr: number, private readonly kernels: Parallel) {
    this.i32 = new Int32Array(buffer, ptr, CONTROL_BYTES / 4);
    this.f64 = new Float64Array(buffer, ptr, CONTROL_BYTES / 8);
  }

  // The caller's side.

  /** Argument i of the next job: `value` for the first unit, plus `delta` per unit before a chunk's first. */
  arg(i: number, value: number, delta = 0): void {
    this.f64[ARGS + i] = value;
    this.f64[DELTAS + i] = delta;
  }

  /**
   * Publishes job number `job` (its arguments set with arg()): `units` units in `chunks` chunks,
   * argument `countArg` being `total` for the whole call, `unit` per unit. Wakes sleeping helpers.
   */
  publish(job: number, op: Op, chunks: number, units: number, countArg: number, unit: number, total: number): void {
    const i32 = this.i32;
    i32[OP] = op;
    i32[CHUNKS] = chunks;
    i32[UNITS] = units;
    i32[COUNT_ARG] = countArg;
    i32[UNIT] = unit;
    i32[TOTAL] = total;
    Atomics.store(i32, DONE, 0);
    Atomics.store(i32, WORK, job << 16);
    if (Atomics.load(i32, SLEEPERS) > 0) Atomics.notify(i32, WORK);
  }

  /**
   * Waits until every chunk of the current job is done: spins, then sleeps where this thread may
   * (`canSleep`: not a browser's main thread). Whether the call was slower than one thread: it
   * waited past the spin longer than it took from `start` (performance.now() before its own work)
   * to the spin's end.
   */
  finish(canSleep: boolean, start: number): boolean {
    const i32 = this.i32;
    const chunks = i32[CHUNKS];
    for (let spin = 0; spin < SPINS; spin++) if (Atomics.load(i32, DONE) === chunks) return false;
    const spun = performance.now();
    for (;;) {
      const done = Atomics.load(i32, DONE);
      if (done === chunks) break;
      if (!canSleep) continue;
      Atomics.store(i32, CALLER_WAITS, 1);
      Atomics.wait(i32, DONE, done, 1);
      Atomics.store(i32, CALLER_WAITS, 0);
    }
    return performance.now() - spun > spun - start;
  }

  /** Lets helpers [0, n) claim chunks; the others leave their loop at the next job. */
  setHelpers(n: number): void {
    Atomics.store(this.i32, HELPERS, n);
  }

  /** Wakes every helper so that those past setHelpers' count leave (job: a number no helper has seen). */
  wakeAll(job: number): void {
    Atomics.store(this.i32, WORK, (job << 16) | 0xffff);
    Atomics.notify(this.i32, WORK);
  }

  // Both sides.

  /** Claims and runs chunks of job `job` until none is left; how many this thread ran. */
  work(job: number): number {
    const i32 = this.i32;
    let ran = 0;
    for (;;) {
      const v = Atomics.load(i32, WORK);
      const c = v & 0xffff;
      // A job number of 16 bits: a claim could be mistaken only by a thread stalled here for
      // exactly 65536 jobs that then finds the same chunk index.
      if (v >>> 16 !== job || c >= i32[CHUNKS]) return ran;
      if (Atomics.compareExchange(i32, WORK, v, (v + 1) | 0) !== v) continue;
      this.run(c);
      ran++;
      Atomics.add(i32, DONE, 1);
      if (Atomics.load(i32, CALLER_WAITS) === 1) Atomics.notify(i32, DONE);
    }
  }

  /**
   * Chunk c: units [c·units/chunks, (c+1)·units/chunks), its arguments moved by that many units.
   * Each kernel is called with its own arity from a call site of its own, which V8 compiles to
   * a direct call into WebAssembly.
   */
  private run(c: number): void {
    const { i32, f64, args: a, kernels: k } = this;
    const op: Op = i32[OP];
    const chunks = i32[CHUNKS];
    const units = i32[UNITS];
    const u0 = Math.floor((c * units) / chunks);
    const u1 = Math.floor(((c + 1) * units) / chunks);
    for (let i = 0; i < ARITY[op]; i++) a[i] = f64[ARGS + i] + u0 * f64[DELTAS + i];
    const unit = i32[UNIT];
    a[i32[COUNT_ARG]] = Math.min(u1 * unit, i32[TOTAL]) - u0 * unit;
    switch (op) {
      case Op.Matmul:
        return k.matmul(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
      case Op.MatmulQ8:
        return k.matmulQ8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
      case Op.Attention:
        return k.attention(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], a[16]);
      case Op.AttendRows:
        return k.attendRows(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
    }
  }

  // The helper's side.

  /**
   * A helper's loop: waits for each new job (spinning, then asleep), helps with it, until it is
   * no longer among the helpers that setHelpers() allows.
   */
  serve(helper: number): void {
    const i32 = this.i32;
    let seen = Atomics.load(i32, WORK) >>> 16;
    for (;;) {
      let v = Atomics.load(i32, WORK);
      for (let spin = 0; v >>> 16 === seen; spin++) {
        if (spin >= SPINS) {
          Atomics.add(i32, SLEEPERS, 1);
          Atomics.wait(i32, WORK, v);
          Atomics.sub(i32, SLEEPERS, 1);
          spin = 0;
        }
        v = Atomics.load(i32, WORK);
      }
      if (helper >= Atomics.load(i32, HELPERS)) return;
      seen = v >>> 16;
      this.work(seen);
    }
  }
}
