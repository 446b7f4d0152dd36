import http from 'node:http';
import https from 'node:https';

/** What {@link request} returns: the status and the whole body as text. */
export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * One HTTP(S) request through node:http / node:https, the whole body read as UTF-8.
 *
 * The agent does not use the global `fetch`: Node's fetch is undici, whose HTTP parser is
 * WebAssembly, and the agent's systemd unit runs Node with `--lite-mode` (memory: no
 * optimizing compilers), which disables WebAssembly — the first `fetch` then throws an
 * uncaught `ReferenceError: WebAssembly is not defined` and kills the process. The AWS SDK
 * already uses node:http (NodeHttpHandler).
 * @param o.timeoutMs for the whole request, milliseconds
 * @param o.ca CA certificates to verify an https server with (default: Node's bundle)
 * @throws Error when the connection fails or no answer comes within `timeoutMs`
 */
export function request(
  url: string | URL,
  o: { method?: string; headers?: Record<string, string>; timeoutMs: number; ca?: Buffer },
): Promise<HttpAnswer> {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      u,
      {
        method: o.method ?? 'GET',
        headers: o.headers ?? {},
        ...(o.ca ? { ca: o.ca } : {}),
        signal: AbortSignal.timeout(o.timeoutMs),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', (e) =>
      reject(e.name === 'AbortError' ? new Error(`no answer within ${o.timeoutMs} ms`) : e),
    );
    req.end();
  });
}
