import path from 'node:path';
import { freePort } from '../aws/local.js';
import { PlatformError } from '../errors.js';
import { type BackgroundProcess, spawnBackground } from '../exec/index.js';

/**
 * A throw-away etcd member on loopback: what `etcd-restore --dry-run` starts on a restored
 * scratch data directory to count its keys, and what the tests start as a real cluster.
 * Only 127.0.0.1, plain http (nothing leaves the host), ports picked free by the OS.
 */
export interface LocalMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc?: BackgroundProcess;
}

/** Picks free loopback client and peer ports for `names`. */
export async function planLocalMembers(names: string[], dataRoot: string): Promise<LocalMember[]> {
  const out: LocalMember[] = [];
  for (const name of names) {
    out.push({
      name,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: path.join(dataRoot, name),
    });
  }
  return out;
}

/**
 * Starts the members (each with `--initial-cluster` naming all of them) and waits until
 * each answers `/health` on its client URL.
 * @param opts.state 'new' for a fresh or restored cluster
 * @param opts.timeoutS how long to wait for health @default 60
 * @throws PlatformError when a member does not become healthy in time (all are stopped)
 */
export async function startLocalMembers(
  members: LocalMember[],
  opts: { token: string; logDir: string; timeoutS?: number },
): Promise<void> {
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  for (const m of members) {
    m.proc = await spawnBackground(
      'etcd',
      [
        `--name=${m.name}`,
        `--data-dir=${m.dataDir}`,
        `--listen-client-urls=${m.clientUrl}`,
        `--advertise-client-urls=${m.clientUrl}`,
        `--listen-peer-urls=${m.peerUrl}`,
        `--initial-advertise-peer-urls=${m.peerUrl}`,
        `--initial-cluster=${initial}`,
        `--initial-cluster-token=${opts.token}`,
        '--initial-cluster-state=new',
        '--log-level=warn',
      ],
      { cwd: opts.logDir, logFile: path.join(opts.logDir, `${m.name}.log`) },
    );
  }
  const deadline = Date.now() + (opts.timeoutS ?? 60) * 1000;
  for (const m of members) {
    for (;;) {
      const ok = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) })
        .then(async (r) => r.ok && ((await r.json()) as { health?: string }).health === 'true')
        .catch(() => false);
      if (ok) break;
      if (Date.now() > deadline) {
        await stopLocalMembers(members);
        throw new PlatformError(`etcd member ${m.name} did not become healthy at ${m.clientUrl}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Stops the members (SIGTERM, then SIGKILL after 5 s). */
export async function stopLocalMembers(members: LocalMember[]): Promise<void> {
  await Promise.all(members.map((m) => m.proc?.stop()));
  for (const m of members) delete m.proc;
}
