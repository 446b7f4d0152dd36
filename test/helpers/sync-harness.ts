/**
 * Shared by the manifest-sync benchmarks (bench/sync-*.ts) and its reliability tests
 * (test/integration/sync-*.test.ts): an environment bootstrapped in a local AWS
 * (moto_server), manifest-sync agents as child processes, a request-counting proxy in
 * front of the local AWS, and small waiting helpers. Only 127.0.0.1 is ever contacted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AwsClients } from '../../src/aws/clients.js';
import { sha256 } from '../../src/secrets/envelope.js';
import type { KmsKeyService } from '../../src/secrets/keyring.js';
import type { LocalFile, SecretStore } from '../../src/secrets/store.js';
import { bootstrapEnvironment, TEST_REGION } from './env.js';
import { agentNodeFlags, renderUnit } from './unit.js';

// the SDK's Node.js support notice is only noise here (as in test/setup.cjs); the SDK is
// loaded lazily, after this line
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** The repository root (this file runs from dist/bench/). */
export const REPO = path.resolve(import.meta.dirname, '..', '..', '..');
/** The toolkit CLI launcher and the node agent's single-file bundle (npm run build:agent). */
export const CLI = path.join(REPO, 'scripts', 'kube-platform');
export const AGENT_BUNDLE = path.join(REPO, 'dist', 'agent', 'manifest-sync.mjs');
export const REGION = TEST_REGION;

/** The node options of the systemd unit nodes run the agent with (V8 memory flags). */
export async function unitNodeFlags(): Promise<string[]> {
  return agentNodeFlags(await renderUnit(REPO, { environment: 'bench', bucket: 'bench', region: REGION }));
}

/** A small valid static pod; `extra` lines are appended under the container. */
export function pod(name: string, extra = ''): string {
  return (
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: kube-system\nspec:\n  containers:\n` +
    `  - name: ${name}\n    image: registry.k8s.io/${name}:v1.34.2\n${extra}`
  );
}

/** A file to publish. */
export function file(p: string, text: string, mode = 0o600): LocalFile {
  const content = Buffer.from(text);
  return { path: p, content, sha256: sha256(content), size: content.length, mode };
}

/** An environment bootstrapped (KMS key, buckets) in the local AWS at `endpoint`. */
export interface SyncEnv {
  environment: string;
  bucket: string;
  kmsKeyArn: string;
  aws: AwsClients;
  store: SecretStore;
  keys: KmsKeyService;
}

export async function setupEnv(endpoint: string, environment: string): Promise<SyncEnv> {
  const { aws, names, kmsKeyArn, store, keys } = await bootstrapEnvironment(endpoint, environment);
  return { environment, bucket: names.secretsBucket, kmsKeyArn, aws, store, keys };
}

export interface AgentSpec {
  env: SyncEnv;
  /** the local AWS endpoint the agent talks to */
  endpoint: string;
  /** extra environment variables (credentials) for the child */
  childEnv: Record<string, string>;
  nodeId: string;
  dest: string;
  root?: string;
  layer?: string;
  /** seconds @default 1 */
  interval?: number;
  heartbeat?: number;
  /** run the single-file bundle (what nodes run) instead of the toolkit CLI */
  bundle?: boolean;
  /** options for node itself, before the script (e.g. V8 heap flags) */
  nodeFlags?: string[];
  logFile?: string;
}

/** A manifest-sync agent child process. */
export class Agent {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly logFile: string;
  /** what this process wrote to stderr so far */
  output = '';
  constructor(spec: AgentSpec) {
    const entry = spec.bundle ? [AGENT_BUNDLE] : [CLI, 'manifest-sync'];
    if (spec.bundle && !existsSync(AGENT_BUNDLE))
      throw new Error(`${AGENT_BUNDLE} is missing: npm run build:agent`);
    const args = [
      ...entry,
      '--environment',
      spec.env.environment,
      '--bucket',
      spec.env.bucket,
      '--region',
      REGION,
      '--layer',
      spec.layer ?? 'secure',
      '--node-id',
      spec.nodeId,
      '--dest',
      spec.dest,
      '--root',
      spec.root ?? spec.dest,
      '--interval',
      String(spec.interval ?? 1),
      '--heartbeat',
      String(spec.heartbeat ?? 60),
    ];
    this.logFile = spec.logFile ?? path.join(spec.dest, '..', `agent-${spec.nodeId}.log`);
    const log = createWriteStream(this.logFile, { flags: 'a' });
    this.child = spawn(process.execPath, [...(spec.nodeFlags ?? []), ...args], {
      env: {
        ...process.env,
        ...spec.childEnv,
        AWS_ENDPOINT_URL: spec.endpoint,
        AWS_EC2_METADATA_DISABLED: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.pipe(log, { end: false });
    this.child.stderr?.pipe(log, { end: false });
    this.child.stderr?.on('data', (c: Buffer) => {
      this.output += c.toString('utf8');
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** Resolves once the agent logged its start line (its SIGTERM handler is installed by then). */
  async started(timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.output.includes('manifest-sync: ') || this.child.exitCode !== null, timeoutMs);
    if (this.child.exitCode !== null)
      throw new Error(`agent exited with ${this.child.exitCode}:\n${this.output}`);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** SIGTERM, then the exit status (SIGKILL after `graceMs`). */
  async stop(graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  async log(): Promise<string> {
    return readFile(this.logFile, 'utf8').catch(() => '');
  }
}

/** Polls `cond` every `pollMs` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  cond: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs: number,
  pollMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Reads a file, or undefined when it does not exist. */
export async function readOrUndefined(p: string): Promise<string | undefined> {
  return readFile(p, 'utf8').catch(() => undefined);
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Requests seen by {@link CountingProxy}, by service and operation. */
export interface RequestCount {
  total: number;
  kms: number;
  s3Get: number;
  s3Put: number;
  s3Other: number;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of the local AWS that counts the requests an agent
 * makes (the AWS SDK sends every call to AWS_ENDPOINT_URL, so pointing the agent at the proxy
 * counts them all). KMS calls are recognised by their X-Amz-Target (TrentService.*).
 */
export class CountingProxy {
  readonly count: RequestCount = { total: 0, kms: 0, s3Get: 0, s3Put: 0, s3Other: 0 };
  #server?: http.Server;
  endpoint = '';
  constructor(private readonly upstream: string) {}

  async start(): Promise<void> {
    const up = new URL(this.upstream);
    this.#server = http.createServer((req, res) => {
      this.count.total++;
      const target = String(req.headers['x-amz-target'] ?? '');
      if (target.startsWith('TrentService.')) this.count.kms++;
      else if (req.method === 'GET') this.count.s3Get++;
      else if (req.method === 'PUT') this.count.s3Put++;
      else this.count.s3Other++;
      const fwd = http.request(
        { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      fwd.on('error', () => {
        res.statusCode = 502;
        res.end();
      });
      req.pipe(fwd);
    });
    this.#server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    this.endpoint = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  snapshot(): RequestCount {
    return { ...this.count };
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
  }
}

/** Peak resident set size of a process in MiB (VmHWM in /proc/<pid>/status, Linux). */
export async function peakRssMiB(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(text)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/** The p-th percentile (0..100) of `values`, nearest-rank method. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}
