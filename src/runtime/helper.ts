// A helper thread of a Team (threads.ts): a worker (worker_threads in Node, a module Web Worker
// in a browser) that instantiates the kernel module on the runtime's shared memory, says it is
// ready, then claims chunks of each parallel kernel call until its Team lets it go.
import { isNode, nodeModule } from '../platform.js';
import { Control, type Parallel } from './jobs.js';
import type { HelperStart } from './threads.js';

interface Port {
  post(message: { error?: string }): void;
  close(): void;
}

function serve(start: HelperStart, port: Port): void {
  let control: Control;
  try {
    const instance = new WebAssembly.Instance(start.module, { env: { memory: start.memory } });
    control = new Control(start.memory.buffer, start.control, instance.exports as unknown as Parallel);
  } catch (e) {
    port.post({ error: `it could not instantiate the kernels (${(e as Error).message})` });
    return;
  }
  port.post({});
  control.serve(start.helper);
  port.close();
}

/** This worker's port: worker_threads' parentPort in Node, the worker's global scope in a browser. */
async function listen(): Promise<void> {
  if (isNode()) {
    const { parentPort } = await nodeModule<typeof import('node:worker_threads')>('node:worker_threads');
    parentPort!.once('message', (start: HelperStart) => serve(start, { post: (m) => parentPort!.postMessage(m), close: () => parentPort!.close() }));
    return;
  }
  const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<HelperStart>) => void) | null; postMessage(m: unknown): void; close(): void };
  scope.onmessage = (e) => {
    scope.onmessage = null;
    serve(e.data, { post: (m) => scope.postMessage(m), close: () => scope.close() });
  };
}

// No top-level await: bundlers build workers as classic scripts.
void listen();
