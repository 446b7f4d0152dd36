/**
 * Benchmark: publish and fetch of 300 files of ~4 KB through the bucket protocol, side
 * by side in the same run with the awscli doing the same transfer against the same local
 * AWS (`aws s3 sync --sse aws:kms` up, `aws s3 cp --recursive` down), plus a republish
 * with nothing changed.
 *
 *   npm run build && node dist/bench/secrets-transfer.js [--files 300] [--bytes 4096] [--rounds 5] [--latency-ms 20]
 *
 * --latency-ms N puts both clients behind the same small proxy on loopback that holds every
 * request N ms before forwarding it to the local AWS (as S3's round trip from a workstation
 * would). On the bare local AWS the server's own floor dominates (it serves one request at
 * a time), so only with latency does a client's concurrency show; the summary prints our
 * concurrency and the awscli's (its s3 `max_concurrent_requests`, default 10) beside the ratio.
 *
 * Each round starts from an empty local AWS (POST /moto-api/reset, then the environment's
 * bucket and key are bootstrapped again, untimed) and times, in this order: our publish,
 * republish and fetch; the awscli's sync, re-sync and recursive copy; and the floor (see
 * below). The figures printed are the medians over the rounds; the ratio is the median of the
 * per-round ratios (a paired comparison: the machine's speed drifts between rounds), with its range.
 *
 * Columns:
 * - wall time. Ours is measured in this process (the library `run` and `upload-secrets`
 *   call, as they call it); the awscli's includes its interpreter start-up, printed on its
 *   own line for reference, as is ours (`node scripts/kube-platform --help`).
 * - CPU seconds of the client (user + system): ours from process.cpuUsage(), the awscli's
 *   from bash's `times` around it. This is the client's own work, independent of the server.
 * - requests: ours counted by the store and the KMS key service (client side). The awscli
 *   makes no KMS request itself: with SSE-KMS, S3 calls KMS server-side per object (the
 *   local AWS only echoes SSE-KMS, so that cost is not visible here).
 * - floor: the same number of PUT or GET requests of the same sizes, sent by a bare
 *   node:http client (no SDK, no signing, no encryption) at our concurrency. The local AWS
 *   (moto_server on werkzeug) serves one request at a time per CPU under Python's GIL and
 *   closes every connection, so no client can beat this figure on this server.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AwsClients } from '../src/aws/clients.js';
import { exec } from '../src/exec/index.js';
import { readLayerDir } from '../src/secrets/local.js';
import { openSecretStore } from '../src/secrets/store.js';
import { renderTable } from '../src/table.js';
import { bootstrapEnvironment, TEST_REGION } from '../test/helpers/env.js';
import { type Moto, startMoto } from '../test/helpers/moto.js';

const { values: opts } = parseArgs({
  options: {
    files: { type: 'string', default: '300' },
    bytes: { type: 'string', default: '4096' },
    rounds: { type: 'string', default: '5' },
    'latency-ms': { type: 'string', default: '0' },
  },
});
const FILES = Number(opts.files);
const BYTES = Number(opts.bytes);
const ROUNDS = Number(opts.rounds);
/** with --latency-ms N, both clients talk to the local AWS through a proxy holding each request N ms */
const LATENCY_MS = Number(opts['latency-ms']);
if (!Number.isFinite(LATENCY_MS) || LATENCY_MS < 0 || LATENCY_MS > 10_000) {
  throw new Error(`--latency-ms ${opts['latency-ms']}: must be 0 to 10000`);
}
const ENV = 'bench';
const REGION = TEST_REGION;
/** SecretStore's default number of requests in flight */
const CONCURRENCY = 16;
const root = path.resolve(import.meta.dirname, '..', '..');

interface Sample {
  wall: number;
  cpu: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Wall and CPU seconds of an in-process step. */
async function measure<T>(fn: () => Promise<T>): Promise<[T, Sample]> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return [r, { wall, cpu: (c.user + c.system) / 1e6 }];
}

/** Wall and CPU seconds of one awscli invocation (its CPU from bash's `times`). */
async function awscli(moto: Moto, endpoint: string, args: string[]): Promise<Sample> {
  const t0 = performance.now();
  const r = await exec('bash', ['-c', 'aws "$@" >/dev/null; s=$?; times; exit $s', 'awscli', ...args], {
    cwd: os.tmpdir(),
    env: { ...moto.env, AWS_DEFAULT_REGION: REGION, AWS_ENDPOINT_URL: endpoint },
  });
  const wall = (performance.now() - t0) / 1000;
  // `times` prints two lines, "<user> <sys>" of the shell, then of its children: 0m1.234s 0m0.120s
  const children = r.stdout.trim().split('\n').at(-1)!;
  const cpu = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce(
    (s, m) => s + Number(m[1]) * 60 + Number(m[2]),
    0,
  );
  return { wall, cpu };
}

/**
 * The server's floor: `count` requests of `size` bytes (PUT) or for existing keys (GET)
 * from a bare HTTP client, `CONCURRENCY` in flight. moto routes by the SigV4 credential
 * scope of the Authorization header and does not check signatures, so a syntactically
 * valid header without a real signature is enough.
 */
async function floor(endpoint: string, bucket: string, method: 'PUT' | 'GET', count: number, size: number) {
  const u = new URL(endpoint);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const scope = `bench/20260101/${REGION}/s3/aws4_request`;
  const headers = {
    authorization: `AWS4-HMAC-SHA256 Credential=${scope}, SignedHeaders=host, Signature=0`,
    'x-amz-date': '20260101T000000Z',
    'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
  };
  const body = randomBytes(size);
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          method,
          path: `/${bucket}/floor/f${i}`,
          agent,
          headers: method === 'PUT' ? { ...headers, 'content-length': size } : headers,
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            (res.statusCode ?? 500) < 300
              ? resolve()
              : reject(new Error(`${method} f${i}: ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(method === 'PUT' ? body : undefined);
    });
  let next = 0;
  const [, sample] = await measure(() =>
    Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < count) await one(next++);
      }),
    ),
  );
  agent.destroy();
  return sample;
}

/**
 * A loopback HTTP proxy in front of the local AWS that holds each request `latencyMs`
 * before forwarding it (request and response streamed through unchanged).
 * @returns its endpoint and a close function
 */
async function delayingProxy(
  target: string,
  latencyMs: number,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const t = new URL(target);
  const server = http.createServer((req, res) => {
    req.pause();
    setTimeout(() => {
      const up = http.request(
        { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      req.pipe(up);
      req.resume();
    }, latencyMs);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as import('node:net').AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** The awscli's s3 transfer concurrency: `s3.max_concurrent_requests` of its config, default 10. */
async function awscliConcurrency(): Promise<number> {
  const r = await exec('aws', ['configure', 'get', 'default.s3.max_concurrent_requests'], {
    cwd: os.tmpdir(),
    reject: false,
  });
  const n = Number(r.stdout.trim());
  return r.exitCode === 0 && Number.isInteger(n) && n > 0 ? n : 10;
}

async function startupSeconds(file: string, args: string[]): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await exec(file, args, { cwd: root });
    runs.push((performance.now() - t0) / 1000);
  }
  return median(runs);
}

async function round(moto: Moto, endpoint: string, src: string, work: string) {
  await moto.reset();
  const { aws: direct, names, kmsKeyArn } = await bootstrapEnvironment(moto.endpoint, ENV);
  // the timed clients go through `endpoint` (the delaying proxy with --latency-ms)
  const aws = endpoint === moto.endpoint ? direct : new AwsClients({ region: REGION, endpoint });
  try {
    // a store of its own for each step, so that each counts its own requests
    const newStore = () =>
      openSecretStore(aws, {
        environment: ENV,
        bucket: names.secretsBucket,
        kmsKeyId: kmsKeyArn,
        concurrency: CONCURRENCY,
      });
    const s3 = await aws.s3();

    // ours: publish (reading and hashing the local files included), republish unchanged, fetch
    const p = await newStore();
    const [, publish] = await measure(async () =>
      p.store.publish('secure', await readLayerDir(src, 'secure')),
    );
    const r = await newStore();
    const [again, republish] = await measure(async () =>
      r.store.publish('secure', await readLayerDir(src, 'secure')),
    );
    const f = await newStore();
    const out = path.join(work, 'fetched');
    await rm(out, { recursive: true, force: true });
    const [, fetch] = await measure(async () => {
      const snap = await f.store.readIndex('secure');
      if (!snap || snap === 'not-modified') throw new Error('no index');
      const data = await f.store.fetchAll('secure', snap.index);
      await Promise.all(
        [...data].map(async ([rel, bytes]) => {
          const t = path.join(out, rel);
          await mkdir(path.dirname(t), { recursive: true, mode: 0o700 });
          await writeFile(t, bytes, { mode: 0o600 });
        }),
      );
    });

    // the awscli, same transfer, same server
    const dest = `s3://${names.secretsBucket}/awscli/`;
    const sync = ['s3', 'sync', '--only-show-errors', path.join(src, 'secure'), dest];
    const sse = ['--sse', 'aws:kms', '--sse-kms-key-id', kmsKeyArn];
    const cliOut = path.join(work, 'cli-fetched');
    await rm(cliOut, { recursive: true, force: true });
    const cliUp = await awscli(moto, endpoint, [...sync, ...sse]);
    const cliResync = await awscli(moto, endpoint, [...sync, ...sse]);
    const cliDown = await awscli(moto, endpoint, [
      's3',
      'cp',
      '--only-show-errors',
      '--recursive',
      dest,
      cliOut,
    ]);

    // the floor: our request count, our object size (the envelope's ciphertext)
    const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: names.secretsBucket, Key: 'secure/files/d0/f0.bin' }),
    );
    const floorPut = await floor(endpoint, names.secretsBucket, 'PUT', p.store.puts, head.ContentLength!);
    const floorGet = await floor(endpoint, names.secretsBucket, 'GET', f.store.gets, 0);
    return {
      publish,
      republish,
      fetch,
      cliUp,
      cliResync,
      cliDown,
      floorPut,
      floorGet,
      requests: {
        publish: `${p.store.puts} PutObject, ${p.keys.requests} KMS`,
        republish: `${again.puts} PutObject, ${r.keys.requests} KMS`,
        fetch: `${f.store.gets} GetObject, ${f.keys.requests} KMS`,
      },
    };
  } finally {
    aws.destroy();
    if (aws !== direct) direct.destroy();
  }
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const { moto, proc } = await startMoto();
  Object.assign(process.env, moto.env);
  const work = await mkdtemp(path.join(os.tmpdir(), 'bench-secrets-'));
  const proxy = LATENCY_MS > 0 ? await delayingProxy(moto.endpoint, LATENCY_MS) : undefined;
  const endpoint = proxy?.endpoint ?? moto.endpoint;
  try {
    const src = path.join(work, 'secrets');
    for (let i = 0; i < FILES; i++) {
      const f = path.join(src, 'secure', 'files', `d${i % 10}`, `f${i}.bin`);
      await mkdir(path.dirname(f), { recursive: true });
      await writeFile(f, randomBytes(BYTES), { mode: 0o600 });
    }
    type Round = Awaited<ReturnType<typeof round>>;
    const rounds: Round[] = [];
    const s = (x: number) => `${x.toFixed(2)} s`;
    for (let i = 0; i < ROUNDS; i++) {
      const r = await round(moto, endpoint, src, work);
      rounds.push(r);
      console.error(
        `round ${i + 1}/${ROUNDS}: publish ${s(r.publish.wall)} (awscli ${s(r.cliUp.wall)}, floor ${s(r.floorPut.wall)}), ` +
          `fetch ${s(r.fetch.wall)} (awscli ${s(r.cliDown.wall)}, floor ${s(r.floorGet.wall)})`,
      );
    }
    // Medians of each figure; the ratio is the median of the per-round ratios (each round
    // runs both tools back to back, so a round's ratio is a paired comparison that drifts in
    // the machine's speed mostly cancel), with its range over the rounds.
    const med = (pick: (r: Round) => Sample): Sample => ({
      wall: median(rounds.map((r) => pick(r).wall)),
      cpu: median(rounds.map((r) => pick(r).cpu)),
    });
    const ratio = (ours: (r: Round) => Sample, cli: (r: Round) => Sample) => {
      const xs = rounds.map((r) => ours(r).wall / cli(r).wall);
      return `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
    };
    const row = (
      what: string,
      ours: (r: Round) => Sample,
      cli: (r: Round) => Sample,
      fl: ((r: Round) => Sample) | undefined,
      requests: string,
    ) => [
      what,
      s(med(ours).wall),
      s(med(cli).wall),
      ratio(ours, cli),
      fl ? s(med(fl).wall) : '-',
      s(med(ours).cpu),
      s(med(cli).cpu),
      requests,
    ];
    const req = rounds[0]!.requests;
    const table = await renderTable(
      ['operation', 'ours', 'awscli', 'ratio (range)', 'floor', 'ours CPU', 'awscli CPU', 'our requests'],
      [
        row(
          'publish',
          (r) => r.publish,
          (r) => r.cliUp,
          (r) => r.floorPut,
          req.publish,
        ),
        row(
          'republish, unchanged',
          (r) => r.republish,
          (r) => r.cliResync,
          undefined,
          req.republish,
        ),
        row(
          'fetch',
          (r) => r.fetch,
          (r) => r.cliDown,
          (r) => r.floorGet,
          req.fetch,
        ),
      ],
    );
    const ourStart = await startupSeconds(process.execPath, [
      path.join(root, 'scripts', 'kube-platform'),
      '--help',
    ]);
    const cliStart = await startupSeconds('aws', ['--version']);
    console.log(
      `\n${FILES} files x ${BYTES} bytes, median of ${ROUNDS} rounds, local AWS ${moto.endpoint}, node ${process.version}, ${os.cpus().length} CPUs`,
    );
    console.log(table);
    console.log(
      `floor: the same requests from a bare HTTP client (no SDK, signing or encryption), ${CONCURRENCY} in flight`,
    );
    console.log(
      `start-up, not in "ours" (in-process): kube-platform --help ${s(ourStart)}; in "awscli": aws --version ${s(cliStart)}`,
    );
    console.log('awscli KMS requests (client side): 0 — S3 makes them server-side for SSE-KMS');
    if (proxy) {
      console.log(
        `latency: every request held ${LATENCY_MS} ms by a proxy on loopback (${endpoint}) in front of the local AWS, for both clients; ` +
          `concurrency: ours ${CONCURRENCY} requests in flight, awscli ${await awscliConcurrency()} (s3.max_concurrent_requests)`,
      );
      console.log(
        `ratio at ${LATENCY_MS} ms: publish ${ratio(
          (r) => r.publish,
          (r) => r.cliUp,
        )}, fetch ${ratio(
          (r) => r.fetch,
          (r) => r.cliDown,
        )} (goal: at most 0.5)`,
      );
    }
    console.log('');
  } finally {
    await proxy?.close();
    await proc.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
