// Tiny static server for the browser page (node:http): web/ at /, onnxruntime-web's dist files at /ort/, the exported
// model folders at /m/0/, /m/1/, and /models.json naming them. GET/HEAD only, no directory listings, no path escapes;
// binds to the loopback interface unless told otherwise. Sends COOP/COEP so onnxruntime-web may use wasm threads.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.ts';

/** The page's folder in this package. */
export const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../web');

/** onnxruntime-web's dist/ folder (ort*.mjs and the .wasm files), from the installed package. */
export function ortDistDir(): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('onnxruntime-web');
  } catch {
    throw new ConfigError('onnxruntime-web is not installed; run npm ci (it is a dependency of mope-clip)');
  }
  return dirname(entry);
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.onnx_data': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

export interface ServeOptions {
  /** Exported model folders (each with onnx/model.onnx); served at /m/0/, /m/1/, … */
  models: string[];
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** 0 = any free port. Default 8080. */
  port?: number;
  /** Called for each request (method, path, status). */
  log?: (line: string) => void;
}

export interface RunningServer {
  server: Server;
  url: string;
  port: number;
  close: () => Promise<void>;
}

/** Throws ConfigError unless `dir` looks like a `mope-clip export` folder. */
export function checkExportFolder(dir: string): string {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new ConfigError(`${dir}: not found or not a folder`);
  for (const f of ['onnx/model.onnx', 'tokenizer.json', 'preprocessor_config.json', 'config.json']) {
    if (!existsSync(join(abs, f))) {
      throw new ConfigError(
        `${dir}: lacks ${f}; serve a folder written by mope-clip export (mope-clip export --model CKPT --out DIR)`,
      );
    }
  }
  return abs;
}

/** `rel` inside `root`, or null when it would escape it. */
function inside(root: string, rel: string): string | null {
  const p = resolve(root, '.' + sep + rel);
  return p === root || p.startsWith(root + sep) ? p : null;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendFile(req: IncomingMessage, res: ServerResponse, path: string | null): number {
  if (!path || !existsSync(path) || !statSync(path).isFile()) {
    send(res, 404, 'not found\n');
    return 404;
  }
  const type = MIME[extname(path)] ?? 'application/octet-stream';
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': statSync(path).size });
  if (req.method === 'HEAD') res.end();
  else createReadStream(path).pipe(res);
  return 200;
}

/** The request handler (exported for tests that mount it elsewhere). */
export function makeHandler(models: string[], ortDir: string = ortDistDir(), webDir: string = WEB_DIR) {
  const modelsJson = JSON.stringify({
    models: models.map((m, i) => ({ url: `/m/${i}/`, name: basename(m) })),
  });
  return (req: IncomingMessage, res: ServerResponse): number => {
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'method not allowed\n');
      return 405;
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      send(res, 400, 'bad request\n');
      return 400;
    }
    if (path.includes('\0')) {
      send(res, 400, 'bad request\n');
      return 400;
    }
    if (path === '/' || path === '/index.html') return sendFile(req, res, join(webDir, 'index.html'));
    if (path === '/models.json') {
      send(res, 200, modelsJson, MIME['.json']);
      return 200;
    }
    if (path.startsWith('/ort/')) return sendFile(req, res, inside(ortDir, path.slice(5)));
    const m = /^\/m\/(\d+)\/(.*)$/.exec(path);
    if (m) {
      const root = models[Number(m[1])];
      return sendFile(req, res, root ? inside(root, m[2]!) : null);
    }
    return sendFile(req, res, inside(webDir, path.slice(1)));
  };
}

/** Starts the server; resolves once it listens. */
export function startServer(opts: ServeOptions): Promise<RunningServer> {
  if (opts.models.length === 0) throw new ConfigError('serve: give at least one exported model folder');
  if (opts.models.length > 2)
    throw new ConfigError(`serve: at most two model folders (dense and pruned), found ${opts.models.length}`);
  const models = opts.models.map(checkExportFolder);
  const handler = makeHandler(models);
  const host = opts.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    const status = handler(req, res);
    opts.log?.(`${req.method} ${req.url} ${status}`);
  });
  return new Promise((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      fail(
        e.code === 'EADDRINUSE'
          ? new ConfigError(`serve: port ${opts.port} is in use; choose another --port (0 = any free port)`)
          : e,
      );
    });
    server.listen(opts.port ?? 8080, host, () => {
      const port = (server.address() as AddressInfo).port;
      const shown = host.includes(':') ? `[${host}]` : host;
      ok({
        server,
        port,
        url: `http://${shown}:${port}/`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
