import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { answers, freePort, LOCAL_CREDENTIALS } from '../../src/aws/local.js';
import { type BackgroundProcess, spawnBackground } from '../../src/exec/index.js';

/**
 * A real moto_server per test file (STYLE.md §10). Usage:
 *
 *   const moto = useMoto();               // in the describe/file scope
 *   test('...', async () => { moto.endpoint ... });
 *
 * Starts in beforeAll, resets state in beforeEach (POST /moto-api/reset), stops in afterAll.
 * Sets AWS_ENDPOINT_URL and dummy credentials in process.env while the file runs.
 */
export interface Moto {
  endpoint: string;
  /** variables a child process (terraform, the CLI) needs to reach this server */
  env: Record<string, string>;
  reset(): Promise<void>;
  /**
   * Runs `fn` with moto's request recorder on (`/moto-api/recorder/...`) and returns what it
   * returned and every request the server received meanwhile.
   */
  record<T>(fn: () => Promise<T>): Promise<{ result: T; requests: RecordedRequest[] }>;
}

/** One request as moto's recorder stores it (a JSON line of `moto_recording`). */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  /** true when `body` is base64 */
  body_encoded?: boolean;
}

/** Operation name of a query-protocol (EC2, STS, IAM, ASG) or JSON-protocol (KMS) request. */
function operation(r: RecordedRequest): string | undefined {
  const target = r.headers['X-Amz-Target'] ?? r.headers['x-amz-target'];
  if (target) return target.split('.').pop();
  const body = r.body_encoded ? Buffer.from(r.body, 'base64').toString('latin1') : (r.body ?? '');
  const m = /(?:^|&)Action=([A-Za-z0-9]+)/.exec(body);
  return m?.[1];
}

/** Operations that read or only derive keys: everything else that is not GET/HEAD is a write. */
const READ_OPERATION = /^(Describe|Get|List|Head|Decrypt$|GenerateDataKey|Lookup)/;

/**
 * True when a recorded request may change state: S3 PUT/POST/DELETE, or a query/JSON
 * operation that is not a read (Describe*, Get*, List*, KMS Decrypt/GenerateDataKey).
 */
export function isWrite(r: RecordedRequest): boolean {
  const m = r.method.toUpperCase();
  if (m === 'GET' || m === 'HEAD') return false;
  if (m === 'PUT' || m === 'DELETE') return true;
  const op = operation(r);
  return op === undefined || !READ_OPERATION.test(op);
}

/** `METHOD url [operation]` lines of the writes among `requests`, for assertion messages. */
export function writes(requests: RecordedRequest[]): string[] {
  return requests.filter(isWrite).map((r) => `${r.method} ${r.url}${operation(r) ? ` ${operation(r)}` : ''}`);
}

export async function startMoto(): Promise<{ moto: Moto; proc: BackgroundProcess }> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'moto-'));
  const proc = await spawnBackground('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    cwd: dir,
    logFile: path.join(dir, 'moto.log'),
  });
  const deadline = Date.now() + 30_000;
  while (!(await answers(endpoint, 500))) {
    if (Date.now() > deadline) throw new Error(`moto_server did not start on ${endpoint}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const env = { AWS_ENDPOINT_URL: endpoint, ...LOCAL_CREDENTIALS, AWS_EC2_METADATA_DISABLED: 'true' };
  return {
    proc,
    moto: {
      endpoint,
      env,
      reset: async () => {
        await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      },
      record: async <T>(fn: () => Promise<T>) => {
        const api = `${endpoint}/moto-api/recorder`;
        await fetch(`${api}/reset-recording`, { method: 'POST' });
        await fetch(`${api}/start-recording`, { method: 'POST' });
        let result: T;
        try {
          result = await fn();
        } finally {
          await fetch(`${api}/stop-recording`, { method: 'POST' });
        }
        const text = await (await fetch(`${api}/download-recording`)).text();
        const requests = text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as RecordedRequest);
        return { result, requests };
      },
    },
  };
}

export function useMoto(opts: { resetEach?: boolean } = {}): Moto {
  const handle = { endpoint: '', env: {} as Record<string, string> } as Moto;
  let proc: BackgroundProcess | undefined;
  const saved: Record<string, string | undefined> = {};
  beforeAll(async () => {
    const started = await startMoto();
    proc = started.proc;
    Object.assign(handle, started.moto);
    for (const [k, v] of Object.entries(started.moto.env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  }, 60_000);
  if (opts.resetEach !== false) {
    beforeEach(async () => {
      await handle.reset();
    });
  }
  afterAll(async () => {
    await proc?.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  return handle;
}
