// A tiny static file server of the repository root for the browser example, with no
// dependencies: `npm run serve:example`, or startServer() from a test. Only for local use: it
// listens on 127.0.0.1, serves files under the root and nothing else (no listings, no dotfiles).
// Its pages are cross-origin isolated (COOP and COEP headers), which a browser requires before it
// gives a page SharedArrayBuffer, and so the model its threads.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = '/examples/browser/';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
};

/** The headers that make a page cross-origin isolated; everything here is same-origin. */
const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * Starts serving `root` on 127.0.0.1; port 0 picks a free one. `mounts` serves other folders at
 * URL prefixes ({ '/long/': '/tmp/model' }); `isolated: false` leaves out the isolation headers
 * (a page as most servers send it: no threads). Resolves once listening, with the example page's
 * URL and close() (which also drops open connections, so it never hangs).
 */
export function startServer({ port = 8080, root = ROOT, mounts = {}, isolated = true } = {}) {
  const server = createServer((req, res) => {
    if (isolated) for (const [name, value] of Object.entries(ISOLATION)) res.setHeader(name, value);
    const prefix = Object.keys(mounts).find((p) => req.url.startsWith(p));
    const at = prefix === undefined ? { url: req.url, root, home: EXAMPLE } : { url: req.url.slice(prefix.length - 1), root: mounts[prefix] };
    respond(req, res, at.url, resolve(at.root), at.home).catch(() => send(res, 500, 'internal error'));
  });
  return new Promise((ready, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}${EXAMPLE}`;
      const close = () => new Promise((done) => {
        server.close(() => done());
        server.closeAllConnections();
      });
      ready({ url, close });
    });
  });
}

/** Serves the file `url` names under root; root itself redirects to `home` when there is one. */
async function respond(req, res, url, root, home) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
  const path = filePath(url, root);
  if (path === null) return send(res, 404, 'not found');
  if (path === root && home) return redirect(res, home);
  const info = await stat(path).catch(() => null);
  if (info?.isDirectory()) {
    // A folder's relative URLs need its trailing slash; then its index.html is the page.
    if (!req.url.split('?')[0].endsWith('/')) return redirect(res, `${req.url.split('?')[0]}/`);
    return serveFile(req, res, join(path, 'index.html'));
  }
  return serveFile(req, res, path);
}

/** The file a request path names inside root, or null when it would leave root or touch a dotfile. */
function filePath(url, root) {
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(url, 'http://localhost').pathname);
  } catch {
    return null;
  }
  if (pathname.includes('\0') || pathname.split('/').some((part) => part.startsWith('.'))) return null;
  const path = resolve(root, `.${pathname}`);
  return path === root || path.startsWith(root + sep) ? path : null;
}

async function serveFile(req, res, path) {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) return send(res, 404, 'not found');
  res.writeHead(200, {
    'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
    'content-length': info.size, // lets the page show download progress
    'cache-control': 'no-store', // a rebuilt dist/ is seen at the next reload
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(path).pipe(res);
}

function redirect(res, location) {
  res.writeHead(302, { location });
  res.end();
}

function send(res, status, text) {
  if (res.headersSent) return res.destroy();
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${text}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { url } = await startServer({ port: Number(process.env.PORT ?? 8080) });
  console.log(`wasmformer example: ${url}`);
}
