/**
 * The delaying proxy of `bench/secrets-transfer --latency-ms N`, in a process of its own so
 * that neither client shares an event loop or CPU accounting with it (run in the bench's
 * process, its work was counted in our client's CPU and competed with our client's event
 * loop, and not with the awscli's).
 *
 *   node dist/bench/secrets-transfer-proxy.js --target http://127.0.0.1:PORT --port P --latency-ms 20
 *
 * Holds every request `--latency-ms` before forwarding it to `--target` (request and response
 * streamed through unchanged), as S3's round trip from a workstation would. A request
 * forwarded to the target is counted; `GET /__proxy/stats` returns the counts as JSON
 * (`POST /__proxy/reset` returns them and zeroes them): `{ requests, byMethod, peakInFlight }`, where
 * `peakInFlight` is the most requests the proxy held or forwarded at once: the concurrency
 * the client actually reached. (`__proxy` cannot be an S3 bucket name: bucket names have no
 * underscores.)
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    target: { type: 'string' },
    port: { type: 'string' },
    'latency-ms': { type: 'string', default: '20' },
  },
});
if (!opts.target || !opts.port) throw new Error('--target URL and --port N are required');
const target = new URL(opts.target);
const latencyMs = Number(opts['latency-ms']);
if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new Error(`--latency-ms ${opts['latency-ms']}`);

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a proxy does not
 * forward them. In particular the local AWS answers `Connection: close` to every request;
 * passed on, it would make each client open a new connection per request, which S3 does not.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'];
function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = { ...headers };
  for (const h of HOP_BY_HOP) delete out[h];
  return out;
}

const fresh = () => ({
  requests: 0,
  byMethod: {} as Record<string, number>,
  peakInFlight: 0,
  /** ms during which at least one forwarded request was waiting for the local AWS */
  upstreamBusyMs: 0,
  /** sum over requests of the ms from forwarding to the end of the response */
  upstreamMs: 0,
});
let stats = fresh();
let upstreamOpen = 0;
let busySince = 0;
let inFlight = 0;
// Upstream sockets: keep-alive, unbounded (the local AWS closes each connection anyway).
const upstream = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

const server = http.createServer((req, res) => {
  if (req.url === '/__proxy/stats' || req.url === '/__proxy/reset') {
    const body = JSON.stringify(stats);
    if (req.url === '/__proxy/reset') stats = fresh();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
    return;
  }
  inFlight++;
  stats.requests++;
  stats.peakInFlight = Math.max(stats.peakInFlight, inFlight);
  const m = req.method ?? '?';
  stats.byMethod[m] = (stats.byMethod[m] ?? 0) + 1;
  let done = false;
  const finish = () => {
    if (!done) {
      done = true;
      inFlight--;
    }
  };
  res.on('close', finish);
  req.pause();
  setTimeout(() => {
    const t0 = performance.now();
    if (upstreamOpen++ === 0) busySince = t0;
    let upDone = false;
    const upFinish = () => {
      if (upDone) return;
      upDone = true;
      const t = performance.now();
      stats.upstreamMs += t - t0;
      if (--upstreamOpen === 0) stats.upstreamBusyMs += t - busySince;
    };
    res.on('close', upFinish);
    const up = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: endToEnd(req.headers),
        agent: upstream,
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, endToEnd(r.headers));
        r.pipe(res);
      },
    );
    up.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(e));
    });
    req.pipe(up);
    req.resume();
  }, latencyMs);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(opts.port), '127.0.0.1');
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
