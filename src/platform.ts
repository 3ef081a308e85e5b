// What differs between Node, a browser page and a Web Worker, in one place.

/** True when running under Node (or a runtime with Node's file system). */
export function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/** Imports a Node built-in without letting a browser bundler try to resolve it. */
export async function nodeModule<T>(name: string): Promise<T> {
  return (await import(/* @vite-ignore */ /* webpackIgnore: true */ name)) as T;
}

/**
 * A string as a URL when it is one (http:, https:, file:, data:, blob:), or, in a browser, a
 * path relative to the page; null where it is a file-system path (Node).
 */
export function toUrl(source: string): URL | null {
  if (/^(https?|file|data|blob):/i.test(source)) return new URL(source);
  if (isNode()) return null;
  return new URL(source, globalThis.location?.href);
}

/** Where the work of one call stops long enough for the host to run other tasks. */
export const SLICE_MS = 10;

/**
 * Resolves after the host's other pending tasks (timers, messages, input, painting) ran: a
 * macrotask, not a microtask, so a long decoding neither blocks a page nor misses a cancel.
 */
export function yieldToHost(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  const scheduler = (globalThis as { scheduler?: { yield?: () => Promise<void> } }).scheduler;
  if (typeof scheduler?.yield === 'function') return scheduler.yield();
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
