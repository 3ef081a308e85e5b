// The threads of one runtime: the calling thread and n - 1 helpers (worker_threads in Node, Web
// Workers in a browser), each with its own instance of the kernel module on the one shared
// memory. A Team runs the kernels that carry a step's work (the matmuls and attention) in
// chunks of output columns or heads that any thread may claim (jobs.ts); every other kernel,
// and any call too small to pay for waking a helper, runs on the caller alone.
import { WasmformerError } from '../errors.js';
import { isNode, nodeModule } from '../platform.js';
import { Control, Op, type Parallel } from './jobs.js';
import type { Arena } from './arena.js';
import type { KernelExports } from './kernels.js';

export type { Parallel };

/** Output columns per unit of a matmul: one group of four 8-column panels (assembly/matmul.ts' GROUP). */
const COLUMNS = 32;
/**
 * Multiply-adds below which a chunk costs more in claiming and waiting than it gains: a few
 * microseconds of an int8 matmul (fewer, larger chunks decoded base q8 10% faster on 2 threads
 * than chunks of 16384, and float32 the same).
 */
const MIN_CHUNK_WORK = 1 << 16;
/** Chunks per thread: enough that a late thread's share is taken by the others. */
const CHUNKS_PER_THREAD = 4;
/**
 * The window of parallel calls over which a Team judges its helpers: it retires one after
 * STRIKES windows in a row in which they did less than HELPED of the share of the work they
 * would do on cores of their own, or more than SLOW of the calls waited for a helper longer than
 * the caller alone would have taken. The first WARMUP windows are not judged: the helpers'
 * loops and the kernels are still being compiled then (V8 compiles on the same cores).
 */
const WINDOW = 1024;
const STRIKES = 2;
const WARMUP = 8;
// Measured on the demo on 2 threads: the helper did 44-51% of the work on an idle 2-core
// machine, and 22-26% with the process pinned to one core, where it decoded 1.7 times slower
// than one thread.
const HELPED = 0.6;
const SLOW = 0.05;
/** How long a helper may take to start. */
const START_MS = 10000;

/** A helper as its Team holds it: a worker, stopped by terminate(). */
interface Helper {
  terminate(): Promise<void>;
}

/** What a helper is sent: the module to instantiate, the memory, where the control block is, and its index. */
export interface HelperStart {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: number;
  helper: number;
}

export class Team implements Parallel {
  /** Why fewer threads run than were asked for; null when as asked. */
  reason: string | null;
  private helpers: Helper[];
  private job = 0;
  private calls = 0; // parallel calls in this window
  private claimed = 0; // their work (multiply-adds)
  private helped = 0; // of which the helpers' chunks did
  private slow = 0; // calls that took longer than the caller alone would have
  private windows = 0; // windows so far
  private strikes = 0; // bad windows in a row

  private constructor(
    private readonly raw: KernelExports,
    private readonly arena: Arena,
    private readonly control: Control | null,
    helpers: Helper[],
    reason: string | null,
    private readonly canSleep: boolean,
  ) {
    this.helpers = helpers;
    this.reason = reason;
  }

  /** One thread: every kernel runs on the caller (`reason`: why, when threads were asked for). */
  static solo(raw: KernelExports, arena: Arena, reason: string | null = null): Team {
    return new Team(raw, arena, null, [], reason, false);
  }

  /**
   * The caller and `count` helpers on a shared memory whose control block (CONTROL_BYTES) is at
   * byte `control`. Helpers that fail to start leave one thread, and say why.
   */
  static async start(raw: KernelExports, arena: Arena, module: WebAssembly.Module, control: number, count: number): Promise<Team> {
    const memory = arena.memory;
    const buffer = memory.buffer;
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, helper) => startHelper({ module, memory, control, helper })),
    );
    const helpers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(helpers.map((h) => h.terminate()));
      return Team.solo(raw, arena, `its helper workers could not start (${(failed.reason as Error).message})`);
    }
    const team = new Team(raw, arena, new Control(buffer, control, raw), helpers, null, canSleep());
    team.control!.setHelpers(count);
    return team;
  }

  /** Threads working on this runtime's kernels now: the caller and its helpers. */
  get threads(): number {
    return 1 + this.helpers.length;
  }

  /** Stops every helper; resolves once each has exited. */
  async dispose(): Promise<void> {
    const helpers = this.helpers;
    this.helpers = [];
    if (this.control === null || helpers.length === 0) return;
    this.control.setHelpers(0);
    this.control.wakeAll(this.next());
    await Promise.all(helpers.map((h) => h.terminate()));
  }

  matmul(out: number, a: number, packed: number, m: number, k: number, n: number, lda: number, ldo: number, act: number): void {
    const units = Math.ceil(n / COLUMNS);
    const work = m * k * n;
    const chunks = this.chunks(units, work);
    if (chunks === 1) return this.raw.matmul(out, a, packed, m, k, n, lda, ldo, act);
    const panels = (COLUMNS / 8) * this.raw.packedSize(8, k) * 4; // bytes of a unit's panels
    const c = this.control!;
    c.arg(0, out, COLUMNS * 4); c.arg(1, a); c.arg(2, packed, panels); c.arg(3, m); c.arg(4, k); c.arg(5, n);
    c.arg(6, lda); c.arg(7, ldo); c.arg(8, act);
    this.run(Op.Matmul, work, chunks, units, 5, COLUMNS, n);
  }

  matmulQ8(out: number, aq: number, sa: number, packed: number, m: number, k: number, n: number, ldo: number, act: number): void {
    const units = Math.ceil(n / COLUMNS);
    const work = m * k * n;
    const chunks = this.chunks(units, work);
    if (chunks === 1) return this.raw.matmulQ8(out, aq, sa, packed, m, k, n, ldo, act);
    const panels = (COLUMNS / 8) * this.raw.packedSizeQ8(8, k);
    const c = this.control!;
    c.arg(0, out, COLUMNS * 4); c.arg(1, aq); c.arg(2, sa); c.arg(3, packed, panels); c.arg(4, m); c.arg(5, k);
    c.arg(6, n); c.arg(7, ldo); c.arg(8, act);
    this.run(Op.MatmulQ8, work, chunks, units, 6, COLUMNS, n);
  }

  attention(
    out: number, q: number, k: number, v: number, probs: number, sq: number, sk: number, nhead: number, dk: number,
    ldq: number, ldk: number, ldv: number, ldo: number, scale: number, causalOffset: number, keyMask: number, headStride: number,
  ): void {
    // Heads that share one probabilities scratch (headStride 0) cannot run side by side.
    const work = 2 * nhead * sq * sk * dk;
    const chunks = headStride === 0 ? 1 : this.chunks(nhead, work);
    if (chunks === 1) return this.raw.attention(out, q, k, v, probs, sq, sk, nhead, dk, ldq, ldk, ldv, ldo, scale, causalOffset, keyMask, headStride);
    const head = dk * 4;
    const c = this.control!;
    c.arg(0, out, head); c.arg(1, q, head); c.arg(2, k, head); c.arg(3, v, head); c.arg(4, probs, headStride * 4);
    c.arg(5, sq); c.arg(6, sk); c.arg(7, nhead); c.arg(8, dk); c.arg(9, ldq); c.arg(10, ldk); c.arg(11, ldv);
    c.arg(12, ldo); c.arg(13, scale); c.arg(14, causalOffset); c.arg(15, keyMask); c.arg(16, headStride);
    this.run(Op.Attention, work, chunks, nhead, 7, 1, nhead);
  }

  attendRows(
    out: number, q: number, base: number, probs: number, rows: number, nhead: number, dk: number, ldq: number, ldo: number,
    tables: number, tableStride: number, counts: number, kAdd: number, vAdd: number, scale: number, probsStride: number,
  ): void {
    // Split by heads, a chunk's probabilities go to a scratch of its own (rows reuse it): with
    // one region per row (probsStride > 0) the heads' layout could not be kept.
    const most = probsStride === 0 && this.control !== null ? this.most(counts, rows) : 0;
    const work = 2 * rows * nhead * most * dk;
    const chunks = probsStride === 0 ? this.chunks(nhead, work) : 1;
    if (chunks === 1) return this.raw.attendRows(out, q, base, probs, rows, nhead, dk, ldq, ldo, tables, tableStride, counts, kAdd, vAdd, scale, probsStride);
    const head = dk * 4;
    const c = this.control!;
    c.arg(0, out, head); c.arg(1, q, head); c.arg(2, base); c.arg(3, probs, most * 4); c.arg(4, rows); c.arg(5, nhead);
    c.arg(6, dk); c.arg(7, ldq); c.arg(8, ldo); c.arg(9, tables); c.arg(10, tableStride); c.arg(11, counts);
    c.arg(12, kAdd, dk); c.arg(13, vAdd, dk); c.arg(14, scale); c.arg(15, probsStride);
    this.run(Op.AttendRows, work, chunks, nhead, 5, 1, nhead);
  }

  /** The most keys any of `rows` rows attends to (counts: int32 at byte `counts`). */
  private most(counts: number, rows: number): number {
    const i32 = this.arena.i32();
    let most = 0;
    for (let r = 0; r < rows; r++) most = Math.max(most, i32[(counts >>> 2) + r]);
    return most;
  }

  /** Chunks for `units` units of `work` multiply-adds: 1 runs the kernel directly. */
  private chunks(units: number, work: number): number {
    if (this.helpers.length === 0) return 1;
    return Math.max(1, Math.min(units, this.threads * CHUNKS_PER_THREAD, Math.floor(work / MIN_CHUNK_WORK)));
  }

  private next(): number {
    this.job = (this.job + 1) & 0xffff;
    return this.job;
  }

  /** Publishes the job, works on it beside the helpers, waits for the last chunk, and judges the helpers. */
  private run(op: Op, work: number, chunks: number, units: number, countArg: number, unit: number, total: number): void {
    const control = this.control!;
    const job = this.next();
    control.publish(job, op, chunks, units, countArg, unit, total);
    const start = performance.now();
    const mine = control.work(job);
    this.judge(work, (work * (chunks - mine)) / chunks, control.finish(this.canSleep, start));
  }

  /**
   * Retires a helper when, over a window of calls, the helpers did too little of the work (they
   * rarely get a core: other processes hold them, and their spinning takes the caller's), or too
   * many calls waited for a helper that had claimed a chunk and then lost its core. One thread
   * fewer is faster then; model.threads and its reason say so.
   */
  private judge(work: number, helped: number, slow: boolean): void {
    this.claimed += work;
    this.helped += helped;
    if (slow) this.slow++;
    if (++this.calls < WINDOW) return;
    const fair = (this.threads - 1) / this.threads; // the helpers' share on cores of their own
    const share = this.helped / this.claimed;
    const why = share < HELPED * fair
      ? `the helpers did ${pct(share)} of the last ${WINDOW} parallel kernel calls' work, not the ${pct(fair)} they would on cores of their own`
      : this.slow > SLOW * WINDOW
        ? `${pct(this.slow / WINDOW)} of the last ${WINDOW} parallel kernel calls waited longer for a helper than one thread would have taken`
        : null;
    const judged = this.windows++ >= WARMUP;
    this.strikes = why !== null && judged ? this.strikes + 1 : 0;
    if (this.strikes >= STRIKES && this.helpers.length > 0) {
      this.strikes = 0;
      const before = this.threads;
      const helper = this.helpers.pop()!;
      this.control!.setHelpers(this.helpers.length);
      this.control!.wakeAll(this.next());
      void helper.terminate();
      this.reason = `fell back from ${before} to ${this.threads} threads: ${why} (other processes are contending for the cores)`;
    }
    this.calls = this.claimed = this.helped = this.slow = 0;
  }
}

function pct(x: number): string {
  return `${Math.round(100 * x)}%`;
}

/** Whether this thread may block in Atomics.wait (a browser's main thread may not). */
function canSleep(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/** Why this context cannot run helper threads on a shared memory, or null when it can. */
export function threadsUnavailable(): string | null {
  if (typeof SharedArrayBuffer === 'undefined' || (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) {
    return 'SharedArrayBuffer is not available here: a page must be cross-origin isolated ' +
      '(served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)';
  }
  if (!isNode() && typeof Worker === 'undefined') return 'this context cannot start Web Workers';
  return null;
}

/** The threads that 'auto' means: the machine's cores, at most 4 (see the README's Threads section). */
export async function autoThreads(): Promise<number> {
  const cores = isNode()
    ? (await nodeModule<typeof import('node:os')>('node:os')).availableParallelism()
    : (globalThis.navigator?.hardwareConcurrency ?? 1);
  return Math.max(1, Math.min(4, cores));
}

// Named by a constant in Node, a literal in the browser's Worker constructor below, which
// bundlers must see to bundle the helper (as src/worker.ts does).
const NODE_HELPER = './helper.js';

/** Starts one helper and resolves once it has instantiated the module and is waiting for jobs. */
async function startHelper(start: HelperStart): Promise<Helper> {
  if (isNode()) {
    const { Worker } = await nodeModule<typeof import('node:worker_threads')>('node:worker_threads');
    // No inherited node flags (execArgv: []): a helper imports only this package's files, and a
    // flag such as --input-type would stop it from starting. V8's flags are the process's anyway.
    const worker = new Worker(new URL(NODE_HELPER, import.meta.url), { execArgv: [] });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    let on: (m: { error?: string }) => void = () => undefined;
    const onMessage = (m: { error?: string }): void => on(m);
    const onError = (e: Error): void => on({ error: e.message });
    const onExit = (code: number): void => on({ error: `it exited with code ${code}` });
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    try {
      await ready(start, (m) => worker.postMessage(m), (listener) => (on = listener), () => void worker.terminate());
    } finally {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    }
    worker.unref(); // a helper never keeps a process alive (a listener on its port would)
    return { terminate: async () => { await worker.terminate(); await exited; } };
  }
  const worker = new Worker(new URL('./helper.js', import.meta.url), { type: 'module' });
  await ready(start, (m) => worker.postMessage(m), (on) => {
    worker.onmessage = (e) => on(e.data as { error?: string });
    worker.onerror = (e) => on({ error: e.message || 'the helper script failed to load' });
  }, () => worker.terminate());
  return { terminate: async () => worker.terminate() };
}

/** Sends a helper its start and waits for its answer ({} when ready, { error } when not). */
function ready(
  start: HelperStart, post: (m: HelperStart) => void,
  listen: (on: (m: { error?: string }) => void) => void, kill: () => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`it did not start within ${START_MS / 1000} s`), START_MS);
    const fail = (message: string): void => {
      clearTimeout(timer);
      kill();
      reject(new WasmformerError('UNSUPPORTED', `helper ${start.helper + 1}: ${message}`));
    };
    listen((m) => {
      if (m.error !== undefined) return fail(m.error);
      clearTimeout(timer);
      resolve();
    });
    post(start);
  });
}
