/**
 * Benchmark: publish and fetch of 300 files of ~4 KB through the bucket protocol, side
 * by side in the same run with the awscli doing the same transfer against the same local
 * AWS (`aws s3 sync --sse aws:kms` up, `aws s3 cp --recursive` down), plus a republish
 * with nothing changed.
 *
 *   npm run build && node dist/bench/secrets-transfer.js [--files 300] [--bytes 4096] [--rounds 5] [--latency-ms 20]
 *
 * --latency-ms N puts both clients behind the same proxy on loopback, a process of its own
 * (bench/secrets-transfer-proxy.ts), that holds every request N ms before forwarding it to
 * the local AWS, as S3's round trip from a workstation would, and keeps the clients'
 * connections alive as S3 does (it does not pass on the local AWS's `Connection: close`).
 * It counts what each client sent and the most requests it had in flight at once; the
 * summary prints that beside our configured concurrency and the awscli's (its s3
 * `max_concurrent_requests`, default 10), and stderr shows, per step, the share of the wall
 * time during which the local AWS had a request to answer.
 *
 * Rows: ours in-process (the library calls `run` and the commands make: no start-up), and
 * ours as the commands an operator runs (`upload-secrets -e benchcli`, `fetch-secrets -e
 * benchcli --layer secure`, child processes with their start-up, into an environment of
 * their own on the same server), each beside the awscli's same transfer of the same files.
 *
 * Each round starts from an empty local AWS (POST /moto-api/reset, then the environments'
 * buckets and keys are bootstrapped again, untimed) and times, in this order: our publish,
 * republish and fetch; upload-secrets and fetch-secrets; the awscli's sync, re-sync and
 * recursive copy; and the floor (see below). The figures printed are the medians over the
 * rounds; the ratio is the median of the per-round ratios (a paired comparison: the
 * machine's speed drifts between rounds), with its range.
 *
 * Columns:
 * - wall time. In-process rows: measured in this process, without start-up; CLI rows and the
 *   awscli: the child process's, start-up included (both start-ups printed for reference).
 * - CPU seconds of the client (user + system): in-process from process.cpuUsage(), child
 *   processes from bash's `times` around them. This is the client's own work, independent of
 *   the server.
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
import { answers, freePort } from '../src/aws/local.js';
import { exec, spawnBackground } from '../src/exec/index.js';
import { readLayerDir } from '../src/secrets/local.js';
import { SEEN_FILE } from '../src/secrets/seen.js';
import { DEFAULT_CONCURRENCY, openSecretStore } from '../src/secrets/store.js';
import { renderTable } from '../src/table.js';
import { CLI, workspace } from '../test/helpers/cli.js';
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
/** the environment the CLI rows publish to and fetch from: same server, its own bucket and key */
const CLI_ENV = 'benchcli';
const REGION = TEST_REGION;
/** SecretStore's default number of requests in flight (what the commands use) */
const CONCURRENCY = DEFAULT_CONCURRENCY;
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

/**
 * Wall and CPU seconds of one command run as a child process (its CPU from bash's `times`:
 * user + system of the children), its output discarded.
 * @throws ExecError when it exits non-zero (its stderr in the message)
 */
async function child(file: string, args: string[], env: Record<string, string | undefined>): Promise<Sample> {
  const t0 = performance.now();
  const r = await exec('bash', ['-c', '"$@" >/dev/null; s=$?; times; exit $s', 'child', file, ...args], {
    cwd: os.tmpdir(),
    env,
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

/** One awscli invocation against `endpoint`. */
function awscli(moto: Moto, endpoint: string, args: string[]): Promise<Sample> {
  return child('aws', args, { ...moto.env, AWS_DEFAULT_REGION: REGION, AWS_ENDPOINT_URL: endpoint });
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

/** What the proxy saw during one step (bench/secrets-transfer-proxy.ts). */
interface ProxyStats {
  requests: number;
  byMethod: Record<string, number>;
  /** the most requests in flight at once: the concurrency the client reached */
  peakInFlight: number;
  /** ms during which the local AWS had at least one request of ours to answer */
  upstreamBusyMs: number;
}

/**
 * The delaying proxy (bench/secrets-transfer-proxy.ts) in a process of its own in front of
 * the local AWS: every request held `latencyMs`, connections kept alive on the client side.
 * Without latency the clients talk to the local AWS directly and `stats` returns undefined.
 */
async function startProxy(
  target: string,
  latencyMs: number,
  dir: string,
): Promise<{
  endpoint: string;
  latencyMs: number;
  stats(): Promise<ProxyStats | undefined>;
  stop(): Promise<void>;
}> {
  if (latencyMs === 0)
    return { endpoint: target, latencyMs, stats: async () => undefined, stop: async () => {} };
  const port = await freePort();
  const proc = await spawnBackground(
    process.execPath,
    [
      path.join(import.meta.dirname, 'secrets-transfer-proxy.js'),
      ...['--target', target, '--port', String(port), '--latency-ms', String(latencyMs)],
    ],
    { cwd: dir, logFile: path.join(dir, 'proxy.log') },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await answers(endpoint, 500))) {
    if (Date.now() > deadline) throw new Error(`the delaying proxy did not start on ${endpoint}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    endpoint,
    latencyMs,
    // each read zeroes the counts: a step's figures are those since the previous read
    stats: async () =>
      (await (await fetch(`${endpoint}/__proxy/reset`, { method: 'POST' })).json()) as ProxyStats,
    stop: () => proc.stop(),
  };
}

/** `12 PUT, 1 GET` style summary of what the proxy forwarded. */
function seen(st: ProxyStats | undefined): string {
  if (!st) return '-';
  const m = Object.entries(st.byMethod)
    .sort(([, a], [, b]) => b - a)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  return `${st.requests} (${m}), peak ${st.peakInFlight} in flight`;
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

type Proxy = Awaited<ReturnType<typeof startProxy>>;
/** Operator workspaces of the CLI rows: `up` holds the files (also the in-process source), `down` fetches. */
interface Workspaces {
  up: { dir: string; home: string };
  down: { dir: string; home: string };
}

async function round(moto: Moto, proxy: Proxy, src: string, work: string, ws: Workspaces) {
  await moto.reset();
  const { aws: direct, names, kmsKeyArn } = await bootstrapEnvironment(moto.endpoint, ENV);
  const cliBoot = await bootstrapEnvironment(moto.endpoint, CLI_ENV);
  cliBoot.aws.destroy();
  const endpoint = proxy.endpoint;
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
    await proxy.stats(); // zero the proxy's counts: each step below reads its own

    // ours: publish (reading and hashing the local files included), republish unchanged, fetch
    const p = await newStore();
    const [, publish] = await measure(async () =>
      p.store.publish('secure', await readLayerDir(src, 'secure')),
    );
    const publishSeen = await proxy.stats();
    const r = await newStore();
    const [again, republish] = await measure(async () =>
      r.store.publish('secure', await readLayerDir(src, 'secure')),
    );
    const republishSeen = await proxy.stats();
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
    const fetchSeen = await proxy.stats();

    // the commands as an operator runs them (start-up included), into their own environment
    const cliEnv = (w: { dir: string; home: string }) => ({
      ...moto.env,
      AWS_ENDPOINT_URL: endpoint,
      PLATFORM_WORKDIR: w.dir,
      HOME: w.home,
      AWS_PROFILE: undefined,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    // a new local AWS each round: generation 1 again, so the generations seen are forgotten
    await rm(path.join(src, SEEN_FILE), { force: true });
    await rm(path.join(ws.down.dir, 'secrets'), { recursive: true, force: true });
    const upload = await child(process.execPath, [CLI, 'upload-secrets', '-e', CLI_ENV], cliEnv(ws.up));
    const uploadSeen = await proxy.stats();
    const fetchCmd = await child(
      process.execPath,
      [CLI, 'fetch-secrets', '-e', CLI_ENV, '--layer', 'secure'],
      cliEnv(ws.down),
    );
    const fetchCmdSeen = await proxy.stats();

    // the awscli, same transfer, same server
    const dest = `s3://${names.secretsBucket}/awscli/`;
    const sync = ['s3', 'sync', '--only-show-errors', path.join(src, 'secure'), dest];
    const sse = ['--sse', 'aws:kms', '--sse-kms-key-id', kmsKeyArn];
    const cliOut = path.join(work, 'cli-fetched');
    await rm(cliOut, { recursive: true, force: true });
    const cliUp = await awscli(moto, endpoint, [...sync, ...sse]);
    const cliUpSeen = await proxy.stats();
    const cliResync = await awscli(moto, endpoint, [...sync, ...sse]);
    const cliResyncSeen = await proxy.stats();
    const cliDown = await awscli(moto, endpoint, [
      's3',
      'cp',
      '--only-show-errors',
      '--recursive',
      dest,
      cliOut,
    ]);
    const cliDownSeen = await proxy.stats();

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
      upload,
      fetchCmd,
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
      /** per step, what the proxy saw of ours and of the awscli's counterpart, with their wall times */
      seen: {
        publish: [publishSeen, publish, cliUpSeen, cliUp],
        republish: [republishSeen, republish, cliResyncSeen, cliResync],
        fetch: [fetchSeen, fetch, cliDownSeen, cliDown],
        upload: [uploadSeen, upload, cliUpSeen, cliUp],
        fetchCmd: [fetchCmdSeen, fetchCmd, cliDownSeen, cliDown],
      } as Record<string, [ProxyStats | undefined, Sample, ProxyStats | undefined, Sample]>,
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
  const proxy = await startProxy(moto.endpoint, LATENCY_MS, work);
  const ws: Workspaces = { up: workspace({ [CLI_ENV]: '' }), down: workspace({ [CLI_ENV]: '' }) };
  try {
    // the same files for every client: the in-process publish, upload-secrets and the awscli
    const src = path.join(ws.up.dir, 'secrets', CLI_ENV);
    for (let i = 0; i < FILES; i++) {
      const f = path.join(src, 'secure', 'files', `d${i % 10}`, `f${i}.bin`);
      await mkdir(path.dirname(f), { recursive: true, mode: 0o700 });
      await writeFile(f, randomBytes(BYTES), { mode: 0o600 });
    }
    type Round = Awaited<ReturnType<typeof round>>;
    const rounds: Round[] = [];
    const s = (x: number) => `${x.toFixed(2)} s`;
    for (let i = 0; i < ROUNDS; i++) {
      const r = await round(moto, proxy, src, work, ws);
      rounds.push(r);
      console.error(
        `round ${i + 1}/${ROUNDS}: publish ${s(r.publish.wall)} (upload-secrets ${s(r.upload.wall)}, awscli ${s(r.cliUp.wall)}, floor ${s(r.floorPut.wall)}), ` +
          `fetch ${s(r.fetch.wall)} (fetch-secrets ${s(r.fetchCmd.wall)}, awscli ${s(r.cliDown.wall)}, floor ${s(r.floorGet.wall)})`,
      );
      // the local AWS's share of the wall time: how long it had at least one request to answer
      const busy = (st: ProxyStats, x: Sample) => `${Math.round(st.upstreamBusyMs / 10 / x.wall)}%`;
      for (const [what, [ours, oursT, cli, cliT]] of Object.entries(r.seen)) {
        if (ours && cli) {
          console.error(
            `  ${what}: ours ${seen(ours)}, local AWS busy ${busy(ours, oursT)} of the time; awscli ${seen(cli)}, busy ${busy(cli, cliT)}`,
          );
        }
      }
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
    ) => [
      what,
      s(med(ours).wall),
      s(med(cli).wall),
      ratio(ours, cli),
      fl ? s(med(fl).wall) : '-',
      s(med(ours).cpu),
      s(med(cli).cpu),
    ];
    const req = rounds[0]!.requests;
    // peak requests in flight the proxy saw, median over the rounds: ours / the awscli's
    const inFlight = (what: string) => {
      if (!proxy.latencyMs) return '-';
      const peak = (k: 0 | 2) => median(rounds.map((r) => r.seen[what]![k]?.peakInFlight ?? 0));
      return `${peak(0)} / ${peak(2)}`;
    };
    const table = await renderTable(
      [
        'operation',
        'ours',
        'awscli',
        'ratio (range)',
        'floor',
        'ours CPU',
        'awscli CPU',
        'in flight (ours / awscli)',
        'our requests',
      ],
      [
        [
          ...row(
            'publish (in-process)',
            (r) => r.publish,
            (r) => r.cliUp,
            (r) => r.floorPut,
          ),
          inFlight('publish'),
          req.publish,
        ],
        [
          ...row(
            'upload-secrets (CLI)',
            (r) => r.upload,
            (r) => r.cliUp,
            (r) => r.floorPut,
          ),
          inFlight('upload'),
          'as publish, and start-up',
        ],
        [
          ...row(
            'republish, unchanged',
            (r) => r.republish,
            (r) => r.cliResync,
            undefined,
          ),
          inFlight('republish'),
          req.republish,
        ],
        [
          ...row(
            'fetch (in-process)',
            (r) => r.fetch,
            (r) => r.cliDown,
            (r) => r.floorGet,
          ),
          inFlight('fetch'),
          req.fetch,
        ],
        [
          ...row(
            'fetch-secrets (CLI)',
            (r) => r.fetchCmd,
            (r) => r.cliDown,
            (r) => r.floorGet,
          ),
          inFlight('fetchCmd'),
          'as fetch, and start-up',
        ],
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
      `start-up: "in-process" rows exclude ours (kube-platform --help ${s(ourStart)}); the CLI rows and "awscli" include it (aws --version ${s(cliStart)})`,
    );
    console.log('awscli KMS requests (client side): 0 — S3 makes them server-side for SSE-KMS');
    if (proxy.latencyMs) {
      console.log(
        `latency: every request held ${LATENCY_MS} ms by a proxy process on loopback (${proxy.endpoint}) in front of the local AWS, for both clients; ` +
          `concurrency: ours ${CONCURRENCY} requests in flight per layer, awscli ${await awscliConcurrency()} (s3.max_concurrent_requests); "in flight" is the peak the proxy saw`,
      );
      const both = (ours: (r: Round) => Sample, cli: (r: Round) => Sample) => ratio(ours, cli);
      console.log(
        `ratio at ${LATENCY_MS} ms (goal: at most 0.5): publish ${both(
          (r) => r.publish,
          (r) => r.cliUp,
        )} in-process, ${both(
          (r) => r.upload,
          (r) => r.cliUp,
        )} as upload-secrets; fetch ${both(
          (r) => r.fetch,
          (r) => r.cliDown,
        )} in-process, ${both(
          (r) => r.fetchCmd,
          (r) => r.cliDown,
        )} as fetch-secrets`,
      );
    }
    console.log('');
  } finally {
    await proxy.stop();
    await proc.stop();
    await rm(work, { recursive: true, force: true });
    for (const w of [ws.up, ws.down]) await rm(w.dir, { recursive: true, force: true });
  }
}

await main();
