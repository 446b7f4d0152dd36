import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { PlatformError } from '../errors.js';
import { spawnBackground, which } from '../exec/index.js';
import { log } from '../log.js';
import { localAwsDir } from '../paths.js';

/**
 * The embedded local AWS: a `moto_server` on 127.0.0.1 that speaks the AWS wire protocol
 * (S3, KMS, EC2, AutoScaling, IAM, STS, ELB, Route53...). `--local` points every AWS
 * client and the Terraform AWS provider at it through the standard AWS_ENDPOINT_URL.
 *
 * - If AWS_ENDPOINT_URL is already set, that endpoint is used as-is; nothing is started.
 * - Else a server recorded in `.local-aws/server.json` that still answers is reused.
 * - Else one is started on a free port. A `persistent` server (make local, `local-aws
 *   start`) outlives the command so that state survives between runs; otherwise it is
 *   stopped when the command ends ("stops what it started").
 */

/** Credentials moto accepts; not secrets. moto's default account is 123456789012. */
export const LOCAL_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' } as const;

export interface LocalAws {
  endpoint: string;
  /** true when this call started the server */
  started: boolean;
  /** the variables to export to the toolkit and to Terraform */
  env: Record<string, string>;
  /** stops the server if this call started a non-persistent one; otherwise does nothing */
  stop(): Promise<void>;
}

interface ServerRecord {
  pid: number;
  port: number;
  endpoint: string;
}

function recordFile(): string {
  return path.join(localAwsDir(), 'server.json');
}

/** Finds a free TCP port on 127.0.0.1 (the OS picks; tiny race accepted). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True when moto's management API answers at `endpoint` within `timeoutMs`. */
export async function answers(endpoint: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const r = await fetch(`${endpoint}/moto-api/config`, { signal: AbortSignal.timeout(timeoutMs) });
    return r.ok;
  } catch {
    return false;
  }
}

function envFor(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    ...LOCAL_CREDENTIALS,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/**
 * Starts or reuses the local AWS.
 *
 * @param opts.persistent leave a server this call starts running after the command
 * @throws PlatformError when moto_server is not installed or does not come up in 20 s
 */
export async function ensureLocalAws(opts: { persistent?: boolean } = {}): Promise<LocalAws> {
  const given = process.env.AWS_ENDPOINT_URL;
  if (given) {
    return { endpoint: given, started: false, env: { AWS_ENDPOINT_URL: given }, stop: async () => {} };
  }
  const existing = await readRecord();
  if (existing && (await answers(existing.endpoint))) {
    log.debug(`reusing local AWS at ${existing.endpoint} (pid ${existing.pid})`);
    return {
      endpoint: existing.endpoint,
      started: false,
      env: envFor(existing.endpoint),
      stop: async () => {},
    };
  }
  if (!(await which('moto_server'))) {
    throw new PlatformError('moto_server is not installed: the local AWS needs it', {
      hint: "install it with: pip install 'moto[server]'",
    });
  }
  await mkdir(localAwsDir(), { recursive: true });
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = await spawnBackground('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    cwd: localAwsDir(),
    logFile: path.join(localAwsDir(), 'moto.log'),
    detached: opts.persistent ?? false,
  });
  const deadline = Date.now() + 20_000;
  while (!(await answers(endpoint, 500))) {
    if (Date.now() > deadline) {
      await proc.stop(1000);
      throw new PlatformError(`the local AWS did not answer at ${endpoint} within 20 s`, {
        hint: `see ${path.join(localAwsDir(), 'moto.log')}`,
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  log.info(`local AWS started at ${endpoint} (pid ${proc.pid}${opts.persistent ? ', persistent' : ''})`);
  if (opts.persistent) {
    await writeFile(recordFile(), JSON.stringify({ pid: proc.pid, port, endpoint } satisfies ServerRecord));
    return { endpoint, started: true, env: envFor(endpoint), stop: async () => {} };
  }
  return { endpoint, started: true, env: envFor(endpoint), stop: () => proc.stop() };
}

async function readRecord(): Promise<ServerRecord | undefined> {
  try {
    return JSON.parse(await readFile(recordFile(), 'utf8')) as ServerRecord;
  } catch {
    return undefined;
  }
}

/** Stops the persistent local AWS, if one is recorded. Returns true when one was stopped. */
export async function stopLocalAws(): Promise<boolean> {
  const rec = await readRecord();
  await rm(recordFile(), { force: true });
  if (!rec) return false;
  try {
    process.kill(rec.pid, 'SIGTERM');
  } catch {
    return false;
  }
  return true;
}
