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
    },
  };
}

export function useMoto(opts: { resetEach?: boolean } = {}): Moto {
  const handle = { endpoint: '', env: {} as Record<string, string>, reset: async () => {} } as Moto;
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
