import { IntegrityError, PlatformError } from '../errors.js';
import { exec, which } from '../exec/index.js';
import type { EtcdEndpoint } from './endpoint.js';

export type { EtcdEndpoint } from './endpoint.js';

/**
 * etcd's own tools, through the one subprocess wrapper (src/exec/): `etcdctl snapshot save`
 * against a member, and `snapshot status` / `snapshot restore` on a file. etcd 3.6 moved the
 * offline commands to `etcdutl` (etcd.io "Disaster recovery", v3.6); with 3.4/3.5 they are
 * `etcdctl snapshot ...` (deprecated in 3.5). {@link offlineTool} picks whichever is installed.
 *
 * TLS: a member's client URL is https with client certificates on the masters
 * (platform/manifests/secure/manifests/etcd.yaml.hbs); the paths are passed as flags (paths,
 * not secrets), the private key never travels in an argument.
 */

/** What `snapshot status` reports of a snapshot file. */
export interface SnapshotStatus {
  /** etcd's hash of the database (not a SHA-256) */
  hash: number;
  /** the store revision at the time of the snapshot */
  revision: number;
  /** number of key revisions in the database (historical revisions included) */
  totalKey: number;
  /** bytes */
  totalSize: number;
}

function endpointArgs(e: EtcdEndpoint): string[] {
  const a = [`--endpoints=${e.url}`];
  if (e.tls) a.push(`--cacert=${e.tls.caFile}`, `--cert=${e.tls.certFile}`, `--key=${e.tls.keyFile}`);
  return a;
}

const ENV = { ETCDCTL_API: '3' };

/**
 * `etcdutl` when installed (etcd ≥ 3.5), else `etcdctl`, for the offline snapshot commands.
 * @throws PlatformError when neither is installed
 */
export async function offlineTool(): Promise<string> {
  if (await which('etcdutl')) return 'etcdutl';
  if (await which('etcdctl')) return 'etcdctl';
  throw new PlatformError('neither etcdutl nor etcdctl is installed (apt-get install etcd-client)');
}

/**
 * Takes a snapshot of one member into `file` (`etcdctl snapshot save`, which fetches the
 * member's backend database over the maintenance API and appends its SHA-256).
 * @param timeoutS bound on the whole save @default 300
 * @throws ExecError when etcdctl fails (member unreachable, TLS refused)
 */
export async function snapshotSave(endpoint: EtcdEndpoint, file: string, cwd: string, timeoutS = 300) {
  await exec('etcdctl', [...endpointArgs(endpoint), 'snapshot', 'save', file], {
    cwd,
    env: ENV,
    timeoutMs: timeoutS * 1000,
  });
}

/**
 * `snapshot status -w json` of a snapshot file.
 * @throws IntegrityError when the tool cannot read the file as an etcd snapshot
 */
export async function snapshotStatus(file: string, cwd: string): Promise<SnapshotStatus> {
  const tool = await offlineTool();
  const r = await exec(tool, ['snapshot', 'status', file, '-w', 'json'], { cwd, env: ENV, reject: false });
  if (r.exitCode !== 0) {
    throw new IntegrityError(`the snapshot is not a readable etcd database (${tool} snapshot status failed)`);
  }
  try {
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    const n = (k: string) => {
      const v = j[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(k);
      return v;
    };
    return { hash: n('hash'), revision: n('revision'), totalKey: n('totalKey'), totalSize: n('totalSize') };
  } catch {
    throw new IntegrityError(`${tool} snapshot status printed no status for the snapshot`);
  }
}

/** One member of the cluster a snapshot is restored into. */
export interface RestoreMember {
  name: string;
  /** the member's peer URL, e.g. `https://10.80.10.12:2380` */
  peerUrl: string;
}

/**
 * Restores `file` into a new data directory for member `member` of a new cluster
 * (`snapshot restore`, etcd.io "Disaster recovery": every member is restored from the same
 * snapshot with the same `--initial-cluster` and a new `--initial-cluster-token`, which gives
 * the restored cluster a new cluster ID so old members cannot rejoin it). etcd checks the
 * snapshot's appended SHA-256 while restoring.
 * @throws IntegrityError when the snapshot fails etcd's hash check or is not a database;
 *   PlatformError when `dataDir` already exists (a restore never overwrites a data directory)
 */
export async function snapshotRestore(
  file: string,
  opts: { dataDir: string; member: RestoreMember; cluster: RestoreMember[]; token: string; cwd: string },
): Promise<void> {
  const tool = await offlineTool();
  const { existsSync } = await import('node:fs');
  if (existsSync(opts.dataDir)) {
    throw new PlatformError(`${opts.dataDir} exists: a restore writes only into a new data directory`);
  }
  const r = await exec(
    tool,
    [
      'snapshot',
      'restore',
      file,
      `--data-dir=${opts.dataDir}`,
      `--name=${opts.member.name}`,
      `--initial-cluster=${opts.cluster.map((m) => `${m.name}=${m.peerUrl}`).join(',')}`,
      `--initial-cluster-token=${opts.token}`,
      `--initial-advertise-peer-urls=${opts.member.peerUrl}`,
    ],
    { cwd: opts.cwd, env: ENV, reject: false },
  );
  if (r.exitCode !== 0) {
    const why = /hash mismatch|checksum|invalid|not a valid|database/i.test(r.stderr)
      ? 'it fails etcd’s integrity check'
      : 'etcd could not restore it';
    throw new IntegrityError(`the snapshot was not restored: ${why}`, {
      cause: new Error(r.stderr.trim().split('\n').slice(-3).join('\n')),
    });
  }
}

/**
 * Number of keys and the current revision of a running member (`etcdctl get "" --prefix
 * --limit=1 -w json`: the response header's revision and the range's total count).
 */
export async function keyCount(
  endpoint: EtcdEndpoint,
  cwd: string,
): Promise<{ keys: number; revision: number }> {
  const r = await exec(
    'etcdctl',
    [...endpointArgs(endpoint), 'get', '', '--prefix', '--limit=1', '-w', 'json'],
    {
      cwd,
      env: ENV,
      timeoutMs: 30_000,
    },
  );
  const j = JSON.parse(r.stdout) as { count?: number; header?: { revision?: number } };
  return { keys: j.count ?? 0, revision: j.header?.revision ?? 0 };
}

/**
 * `etcdctl snapshot save`, checked with `snapshot status` (the toolkit's `etcd-backup now`
 * and the tests; the masters' timer uses the gateway instead, see gateway.ts).
 */
export function etcdctlSource(endpoint: EtcdEndpoint): {
  save(file: string, scratch: string): Promise<number>;
  check(file: string, scratch: string): Promise<{ revision?: number }>;
} {
  return {
    save: async (file, scratch) => {
      await snapshotSave(endpoint, file, scratch);
      return (await snapshotStatus(file, scratch)).revision;
    },
    check: async (file, scratch) => ({ revision: (await snapshotStatus(file, scratch)).revision }),
  };
}
