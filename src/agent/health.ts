import { readFile } from 'node:fs/promises';
import type { ApiserverHealth, EtcdHealth, LocalHealth } from '../secrets/status.js';
import { request } from './http.js';

/**
 * What a master's agent sees of its own control plane (DESIGN.md §8: health is reported,
 * not probed from outside), added to its `status/secure/<node>` record so that the
 * operator needs no route to etcd:
 *
 * - the local etcd member, from its loopback metrics listener (`--listen-metrics-urls
 *   http://127.0.0.1:2381`, platform/manifests/secure/manifests/etcd.yaml.hbs):
 *   `GET /health` → `{"health":"true","reason":""}` (etcd op-guide "Monitoring"), and from
 *   `GET /metrics` the gauges `etcd_server_has_leader`, `etcd_server_is_leader` and
 *   `etcd_server_version{server_version="3.6.5"}` (etcd metrics reference);
 * - the local kube-apiserver: `GET https://127.0.0.1:6443/readyz` verified with the cluster
 *   CA (Kubernetes "API endpoints for health": unauthenticated callers may read it through
 *   the `system:public-info-viewer` ClusterRole).
 *
 * Every probe is bounded by a timeout and carries the time it was taken: a report the
 * operator reads minutes later says how old it is.
 */

/** Reads one gauge's value from Prometheus text exposition format; undefined when absent. */
export function gauge(metrics: string, name: string): { value: number; labels: string } | undefined {
  const re = new RegExp(`^${name}(\\{[^}]*\\})?\\s+([0-9.eE+-]+)$`, 'm');
  const m = re.exec(metrics);
  return m ? { value: Number(m[2]), labels: m[1] ?? '' } : undefined;
}

/**
 * Probes the local etcd member at `metricsUrl` (its loopback metrics listener).
 * @param timeoutMs per request @default 2000
 * @returns the health; an unreachable member is `healthy: false` with the error as reason
 */
export async function probeEtcd(
  metricsUrl = 'http://127.0.0.1:2381',
  timeoutMs = 2000,
  now: () => Date = () => new Date(),
): Promise<EtcdHealth> {
  const checkedAt = now().toISOString();
  try {
    const h = await request(new URL('/health', metricsUrl), { timeoutMs });
    let body: { health?: string; reason?: string } = {};
    try {
      body = JSON.parse(h.body) as typeof body;
    } catch {
      // not JSON: reported below with the status
    }
    const healthy = h.status === 200 && body.health === 'true';
    let hasLeader: boolean | null = null;
    let isLeader: boolean | null = null;
    let version: string | null = null;
    try {
      const m = (await request(new URL('/metrics', metricsUrl), { timeoutMs })).body;
      const has = gauge(m, 'etcd_server_has_leader');
      const is = gauge(m, 'etcd_server_is_leader');
      hasLeader = has ? has.value === 1 : null;
      isLeader = is ? is.value === 1 : null;
      version = /server_version="([^"]+)"/.exec(gauge(m, 'etcd_server_version')?.labels ?? '')?.[1] ?? null;
    } catch {
      // /health answered: the metrics are a bonus
    }
    return {
      checkedAt,
      healthy,
      reason: healthy ? '' : body.reason || `GET /health: HTTP ${h.status} health=${body.health ?? '?'}`,
      hasLeader,
      isLeader,
      version,
    };
  } catch (e) {
    return {
      checkedAt,
      healthy: false,
      reason: `etcd metrics listener ${metricsUrl} unreachable: ${(e as Error).message}`,
      hasLeader: null,
      isLeader: null,
      version: null,
    };
  }
}

/**
 * Probes the local kube-apiserver's /readyz, verifying its certificate with `caFile`.
 * @param timeoutMs @default 2000
 */
export async function probeApiserver(
  url = 'https://127.0.0.1:6443/readyz',
  caFile = '/etc/kubernetes/pki/ca.crt',
  timeoutMs = 2000,
  now: () => Date = () => new Date(),
): Promise<ApiserverHealth> {
  const checkedAt = now().toISOString();
  let ca: Buffer;
  try {
    ca = await readFile(caFile);
  } catch (e) {
    return { checkedAt, ready: false, detail: `cannot read the CA ${caFile}: ${(e as Error).message}` };
  }
  try {
    const r = await request(url, { timeoutMs, ca });
    const failed = r.body
      .split('\n')
      .filter((l) => l.startsWith('[-]'))
      .join(', ');
    return {
      checkedAt,
      ready: r.status === 200,
      detail: r.status === 200 ? '' : `HTTP ${r.status}${failed ? `: ${failed}` : ''}`,
    };
  } catch (e) {
    return { checkedAt, ready: false, detail: `${url}: ${(e as Error).message}` };
  }
}

/** Both probes, in parallel: what a master adds to its status record. */
export async function probeLocalHealth(
  o: { etcdMetricsUrl?: string; apiserverUrl?: string; caFile?: string; timeoutMs?: number } = {},
): Promise<LocalHealth> {
  const [etcd, apiserver] = await Promise.all([
    probeEtcd(o.etcdMetricsUrl, o.timeoutMs),
    probeApiserver(o.apiserverUrl, o.caFile, o.timeoutMs),
  ]);
  return { etcd, apiserver };
}
