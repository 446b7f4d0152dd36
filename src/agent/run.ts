import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { awsSettings, type LocalEndpoint, StorageClients } from '../aws/storage-clients.js';
import {
  type BackupNowFlags,
  type OpenedBackups,
  openNodeBackups,
  snapshotNow,
} from '../backup/node-command.js';
import { PlatformError, UserError } from '../errors.js';
import { log, setLogFormat } from '../log.js';
import type { Layer } from '../secrets/layers.js';
import { RolloutGate } from '../secrets/rollout.js';
import { openSecretStore, type SecretStore } from '../secrets/store.js';
import { type AgentOptions as AgentRunOptions, runAgent, runAgentOnce } from './agent.js';
import { probeLocalHealth } from './health.js';
import { resolveNodeId } from './imds.js';
import { defaultStateFile } from './state.js';
import { KUBERNETES_SCHEMA_VERSION } from './validate.js';

/**
 * The agent's run: what `manifest-sync` does once it knows where the bucket is. The node
 * agent's bundle (main.ts) calls it in node mode; the toolkit CLI's `manifest-sync`
 * (src/commands/manifest-sync.ts) also in operator mode, with a store opened from `-e ENV`.
 */

/** Options of the agent (see README "manifest-sync"), as commander hands them over. */
export interface AgentOptions {
  /** node mode: environment name (encryption context), with --bucket and --region */
  environment?: string;
  bucket?: string;
  region?: string;
  /** layers to sync, e.g. ['common', 'secure'] (commander checked the names) @default ['secure'] */
  layer: Layer[];
  /** where `manifests/` paths go (kubelet's staticPodPath) @default /etc/kubernetes/manifests */
  dest: string;
  /** where other paths (pki/, kubeconfigs) go @default /etc/kubernetes unless --dest is redirected */
  root?: string;
  /** one pass then exit */
  once?: boolean;
  /** seconds between index polls, 0.1 to 3600 @default 1 */
  interval: number;
  /** seconds between status reports while nothing changes, 1 to 86400 @default 60 */
  heartbeat: number;
  /** directory of the per-layer state files; default /var/lib/kube-platform, or beside a redirected --dest */
  stateDir?: string;
  /** the id status is reported under; default: the instance id from IMDSv2 (node mode) */
  nodeId?: string;
  /** false (--no-status): write no status report */
  status?: boolean;
  /** 'text' (plain lines) or 'json' (one object per line) on stderr @default text */
  logFormat?: string;
  /**
   * masters: the local etcd member's client URL (e.g. https://127.0.0.1:2379); the first
   * master of a staged secure rollout snapshots it before taking the target
   * (src/agent/presnap.ts). Undefined: no snapshot. Also from KP_ETCD_ENDPOINT.
   */
  etcdEndpoint?: string;
  /** CA, client certificate and key of the member: all three, or none (plain http) */
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  /** member name recorded with the snapshot (part of its object key) @default the host name */
  etcdMember?: string;
}

const DEFAULT_DEST = '/etc/kubernetes/manifests';

/** The bucket the agent syncs from, opened. */
export interface AgentConnection {
  store: SecretStore;
  /** node mode with --etcd-endpoint: the backup store the pre-rollout snapshot goes to */
  backups?: OpenedBackups;
  /** node mode (--bucket): status is reported under the instance id by default */
  nodeMode: boolean;
  /** releases the connection's clients (and whatever the opener started) */
  close(): Promise<void>;
}

/**
 * Node mode: opens the secrets bucket `--bucket` of `--environment` in `--region` (the KMS
 * key is the environment's alias, alias/kube-platform/<environment>). The endpoint is the
 * standard AWS_ENDPOINT_URL when set, or `local`'s (the toolkit's `manifest-sync --local`).
 * @throws UserError (exit 2) when --environment or --region is missing
 */
export async function connectNodeMode(o: AgentOptions, local?: LocalEndpoint): Promise<AgentConnection> {
  const environment = o.environment;
  if (!o.bucket) throw new UserError('give --environment, --bucket and --region');
  if (!environment || !o.region) throw new UserError('--bucket needs --environment and --region');
  const aws = new StorageClients(awsSettings(o.region, undefined, local));
  const kmsKeyId = `alias/kube-platform/${environment}`;
  const store = (await openSecretStore(aws, { environment, bucket: o.bucket, kmsKeyId })).store;
  const backups = o.etcdEndpoint
    ? await openNodeBackups({ environment, bucket: o.bucket, region: o.region }, local)
    : undefined;
  return {
    store,
    nodeMode: true,
    ...(backups ? { backups } : {}),
    close: async () => {
      aws.destroy();
      await backups?.close();
    },
  };
}

/**
 * The snapshot flags as `etcd-backup now` takes them (src/backup/node-command.ts), checked.
 * @returns undefined without --etcd-endpoint
 * @throws UserError (exit 2) naming the flag: a malformed URL, an incomplete TLS triple, a
 *   member name unfit for an object key, or --etcd-endpoint without the secure layer
 */
export function presnapFlags(o: AgentOptions, member: () => string): BackupNowFlags | undefined {
  if (o.etcdEndpoint === undefined) {
    if (o.etcdCacert || o.etcdCert || o.etcdKey || o.etcdMember) {
      throw new UserError('--etcd-cacert, --etcd-cert, --etcd-key and --etcd-member need --etcd-endpoint');
    }
    return undefined;
  }
  if (!/^https?:\/\/[^\s/]+$/.test(o.etcdEndpoint)) {
    throw new UserError(
      `--etcd-endpoint ${o.etcdEndpoint}: must be a client URL such as https://127.0.0.1:2379`,
    );
  }
  const given = [o.etcdCacert, o.etcdCert, o.etcdKey].filter(Boolean).length;
  if (given !== 0 && given !== 3)
    throw new UserError('--etcd-cacert, --etcd-cert and --etcd-key go together');
  if (!o.layer.includes('secure')) throw new UserError('--etcd-endpoint: only with --layer secure (masters)');
  const name = o.etcdMember ?? member();
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(name)) {
    throw new UserError(`--etcd-member ${JSON.stringify(name)}: use 1 to 128 of [A-Za-z0-9._-]`);
  }
  return {
    endpoint: o.etcdEndpoint,
    ...(given === 3 ? { cacert: o.etcdCacert!, cert: o.etcdCert!, key: o.etcdKey! } : {}),
    member: name,
    expire: false,
  };
}

/**
 * The agent's `presnap` option: {@link snapshotNow} of the local member into `backups`, as the
 * kp-etcd-backup timer takes it (no slot election: this snapshot is the rollout's, whoever
 * holds the slot; no retention: the timer applies it).
 */
export function presnapTake(backups: OpenedBackups, flags: BackupNowFlags): AgentRunOptions['presnap'] {
  return {
    layer: 'secure',
    take: async () => {
      const t = Date.now();
      const r = await snapshotNow(backups, flags);
      if (!r) throw new PlatformError('the snapshot was not taken');
      return { key: r.key, ms: Date.now() - t };
    },
  };
}

/**
 * The node agent: keeps `--dest` (and `--root`) in step with layers of the secrets bucket,
 * in the foreground until SIGTERM/SIGINT (exit 0), or for one pass with `--once`.
 * @param connect opens the bucket, after the flags are checked and the signal handlers set
 * @returns exit code 0 (errors are thrown)
 * @throws UserError (exit 2) for bad flags; IntegrityError (exit 4) from a `--once` pass that
 *   refused the index or an object, or left a manifest unapplied (the others are applied)
 */
export async function runManifestSync(
  o: AgentOptions,
  connect: () => Promise<AgentConnection>,
): Promise<number> {
  if (o.logFormat === 'json') setLogFormat('json');
  const intervalS = o.interval;
  const heartbeatS = o.heartbeat;
  const redirected = path.resolve(o.dest) !== DEFAULT_DEST;
  const dest = path.resolve(o.dest);
  const root = o.root ? path.resolve(o.root) : redirected ? undefined : '/etc/kubernetes';
  await checkTargetDir('--dest', dest);
  if (o.root) await checkTargetDir('--root', path.resolve(o.root));
  if (!root) log.info(`--dest is redirected and no --root given: only manifests/ are synced`);
  if (o.nodeId !== undefined && !/^[A-Za-z0-9._-]{1,255}$/.test(o.nodeId)) {
    throw new UserError(
      `--node-id ${JSON.stringify(o.nodeId)}: only letters, digits, '.', '_' and '-' (≤ 255)`,
    );
  }
  const presnap = presnapFlags(o, hostname);

  // SIGTERM/SIGINT from here on stop the agent cleanly (exit 0), also while it starts up
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  if (!o.once) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  try {
    return await start(
      o,
      connect,
      { dest, root, redirected, intervalS, heartbeatS, ...(presnap ? { presnap } : {}) },
      stop.signal,
    );
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

async function start(
  o: AgentOptions,
  connect: () => Promise<AgentConnection>,
  p: {
    dest: string;
    root?: string;
    redirected: boolean;
    intervalS: number;
    heartbeatS: number;
    presnap?: BackupNowFlags;
  },
  signal: AbortSignal,
): Promise<number> {
  const { dest, root, redirected, intervalS, heartbeatS } = p;
  const { store, close, nodeMode, backups } = await connect();
  // status reports: always in node mode, in operator mode only for an explicit --node-id
  const nodeId =
    o.status === false ? undefined : nodeMode ? await resolveNodeId(o.nodeId) : (o.nodeId ?? undefined);
  const stateFile = (layer: string) =>
    defaultStateFile(layer, dest, redirected, o.stateDir && path.resolve(o.stateDir));
  const map = { dest, root };

  try {
    if (o.once) {
      await runAgentOnce({ store, layers: o.layer, map, stateFile, ...(nodeId ? { nodeId } : {}) });
      return 0;
    }
    log.debug(`manifests are validated against Kubernetes ${KUBERNETES_SCHEMA_VERSION}`);
    // masters (the secure layer, with a node id): the staged-rollout gate and the local
    // control plane's health in the status report (DESIGN.md §8)
    const environment = o.environment;
    const secure = nodeId !== undefined && environment !== undefined && o.layer.includes('secure');
    if (p.presnap && !backups) throw new UserError('--etcd-endpoint: node mode only (--bucket)');
    if (p.presnap && !secure) throw new UserError('--etcd-endpoint: needs status reports (a node id)');
    await runAgent({
      store,
      layers: o.layer,
      map,
      stateFile,
      intervalS,
      heartbeatS,
      nodeId,
      signal,
      ...(secure
        ? {
            gate: (l: string) =>
              l === 'secure' ? new RolloutGate(store, environment, l, nodeId) : undefined,
            ...(nodeMode ? { health: { layers: ['secure'], probe: () => probeLocalHealth() } } : {}),
            ...(p.presnap && backups ? { presnap: presnapTake(backups, p.presnap) } : {}),
          }
        : {}),
    });
    return 0;
  } finally {
    await close();
  }
}

/**
 * A directory the agent writes into must be a directory (or not exist yet) and not `/`:
 * checked before the bucket is opened, so a bad `--dest` writes nothing (not ENOTDIR or
 * EROFS halfway through a pass).
 * @throws UserError (exit 2)
 */
async function checkTargetDir(flag: string, dir: string): Promise<void> {
  if (dir === path.parse(dir).root) {
    throw new UserError(`${flag} ${dir}: refusing to sync into the root directory; name a directory`);
  }
  const st = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    if (e.code === 'ENOTDIR') return 'notdir' as const;
    throw e;
  });
  if (st === 'notdir' || (st && !st.isDirectory())) {
    throw new UserError(`${flag} ${dir}: is not a directory (it, or a parent, is a file)`);
  }
}
