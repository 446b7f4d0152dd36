import https from 'node:https';
import type { CoreV1Api, KubeConfig, V1Node, V1Pod } from '@kubernetes/client-node';
import { PlatformError } from '../errors.js';

/**
 * The Kubernetes API as `validate` and `roll` use it, through the official client
 * (`@kubernetes/client-node` 1.x; 2.x needs Node 22), behind a narrow interface so that
 * the commands see nodes, pods and evictions, never the client. The only module that
 * imports the client.
 *
 * Calls and their wire format (Kubernetes API reference v1.34):
 *   GET  /readyz                                         → 200 "ok" (health endpoints doc)
 *   GET  /api/v1/nodes                                   → NodeList
 *   GET  /api/v1/pods?fieldSelector=spec.nodeName=<n>    → PodList (field selectors doc)
 *   PATCH /api/v1/nodes/<n>  {"spec":{"unschedulable":true}} (merge patch: kubectl cordon)
 *   POST /api/v1/namespaces/<ns>/pods/<p>/eviction  policy/v1 Eviction → 201, or 429 with a
 *        Status whose details.causes[type=DisruptionBudget] names the PDB ("API-initiated
 *        eviction" doc; kubernetes pkg/registry/core/pod/storage/eviction.go)
 */

/** The API server did not answer (connection refused, TLS failure, timeout) or is not ready. */
export class KubeUnreachableError extends PlatformError {}

/** A Node as the commands need it. */
export interface NodeInfo {
  name: string;
  /** condition Ready is True */
  ready: boolean;
  /** reason/message of the Ready condition when it is not True */
  notReadyReason: string | null;
  /** condition NetworkUnavailable is True */
  networkUnavailable: boolean;
  /** cordoned (spec.unschedulable) */
  unschedulable: boolean;
  /** status.addresses[type=InternalIP] */
  internalIp: string | null;
  /** the EC2 instance id from spec.providerID `aws:///<az>/<instance id>`, when set */
  instanceId: string | null;
  /** status.nodeInfo.kubeletVersion, e.g. v1.34.1 */
  kubeletVersion: string | null;
  labels: Record<string, string>;
}

/** A Pod as the commands need it. */
export interface PodInfo {
  namespace: string;
  name: string;
  nodeName: string | null;
  /** status.phase: Pending, Running, Succeeded, Failed, Unknown */
  phase: string;
  /** condition Ready is True */
  ready: boolean;
  priorityClassName: string | null;
  /** a static pod's mirror (annotation kubernetes.io/config.mirror): not evictable */
  mirror: boolean;
  /** owned by a DaemonSet: drain leaves it (kubectl drain --ignore-daemonsets) */
  daemonSet: boolean;
  labels: Record<string, string>;
  /** the first container's image */
  image: string | null;
}

/** What an eviction request came back with. */
export type EvictResult =
  | { evicted: true }
  /** 429: a PodDisruptionBudget forbids it now; `pdb` is named when the server says which */
  | { evicted: false; pdb: string | null; message: string };

/** The calls `validate` and `roll` make. */
export interface KubeApi {
  /** the server in the kubeconfig, for messages */
  readonly server: string;
  /**
   * GET /readyz within `timeoutMs`.
   * @throws KubeUnreachableError at once when the server cannot be reached or is not ready
   */
  readyz(timeoutMs?: number): Promise<void>;
  listNodes(): Promise<NodeInfo[]>;
  /** pods of every namespace; `fieldSelector` as the API takes it, e.g. `spec.nodeName=n1` */
  listPods(fieldSelector?: string): Promise<PodInfo[]>;
  /** marks the node unschedulable (kubectl cordon) */
  cordon(node: string): Promise<void>;
  /** asks for a policy/v1 Eviction of the pod; a pod already gone counts as evicted */
  evict(namespace: string, name: string): Promise<EvictResult>;
}

function condition(n: V1Node, type: string) {
  return n.status?.conditions?.find((c) => c.type === type);
}

/** NodeInfo from a v1 Node. Pure. */
export function toNodeInfo(n: V1Node): NodeInfo {
  const ready = condition(n, 'Ready');
  const providerId = n.spec?.providerID ?? '';
  const m = /^aws:\/\/\/[^/]*\/(i-[0-9a-f]+)$/.exec(providerId);
  return {
    name: n.metadata?.name ?? '',
    ready: ready?.status === 'True',
    notReadyReason:
      ready?.status === 'True'
        ? null
        : ready
          ? `${ready.reason ?? 'NotReady'}${ready.message ? `: ${ready.message}` : ''}`
          : 'no Ready condition',
    networkUnavailable: condition(n, 'NetworkUnavailable')?.status === 'True',
    unschedulable: Boolean(n.spec?.unschedulable),
    internalIp: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? null,
    instanceId: m?.[1] ?? null,
    kubeletVersion: n.status?.nodeInfo?.kubeletVersion ?? null,
    labels: n.metadata?.labels ?? {},
  };
}

/** PodInfo from a v1 Pod. Pure. */
export function toPodInfo(p: V1Pod): PodInfo {
  return {
    namespace: p.metadata?.namespace ?? 'default',
    name: p.metadata?.name ?? '',
    nodeName: p.spec?.nodeName ?? null,
    phase: p.status?.phase ?? 'Unknown',
    ready: p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True',
    priorityClassName: p.spec?.priorityClassName ?? null,
    mirror: Boolean(p.metadata?.annotations?.['kubernetes.io/config.mirror']),
    daemonSet: (p.metadata?.ownerReferences ?? []).some((o) => o.kind === 'DaemonSet'),
    labels: p.metadata?.labels ?? {},
    image: p.spec?.containers?.[0]?.image ?? null,
  };
}

/**
 * The PDB an eviction's 429 names: the Status cause of type DisruptionBudget says
 * "The disruption budget <name> needs <n> healthy pods and has <m> currently".
 * @param body the response body (a Status, as JSON text or parsed)
 */
export function pdbFromStatus(body: unknown): { pdb: string | null; message: string } {
  let status: {
    message?: string;
    details?: { causes?: { type?: string; reason?: string; message?: string }[] };
  } = {};
  try {
    status = typeof body === 'string' ? JSON.parse(body) : ((body as typeof status) ?? {});
  } catch {
    status = { message: String(body) };
  }
  const cause = status.details?.causes?.find(
    (c) => c.type === 'DisruptionBudget' || c.reason === 'DisruptionBudget',
  );
  const m = cause?.message ? /disruption budget (\S+)/.exec(cause.message) : null;
  return {
    pdb: m?.[1] ?? null,
    message: cause?.message ?? status.message ?? 'eviction refused (429)',
  };
}

function errCode(e: unknown): number | undefined {
  return (e as { code?: unknown }).code && typeof (e as { code: unknown }).code === 'number'
    ? (e as { code: number }).code
    : undefined;
}

/** Client-node over a kubeconfig. */
class ClientNodeApi implements KubeApi {
  constructor(
    private readonly kc: KubeConfig,
    private readonly core: CoreV1Api,
    readonly server: string,
    private readonly callTimeoutMs: number,
  ) {}

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new KubeUnreachableError(`${this.server}: ${what} timed out after ${this.callTimeoutMs} ms`),
              ),
            this.callTimeoutMs,
          );
        }),
      ]);
    } catch (e) {
      if (e instanceof PlatformError) throw e;
      if (errCode(e) === undefined) {
        throw new KubeUnreachableError(`${this.server}: ${what}: ${(e as Error).message}`, { cause: e });
      }
      throw new PlatformError(`${this.server}: ${what}: HTTP ${errCode(e)}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  async readyz(timeoutMs = 5000): Promise<void> {
    const url = new URL('/readyz', this.server);
    const opts: https.RequestOptions = {
      method: 'GET',
      hostname: url.hostname,
      port: url.port || 443,
      path: url.pathname,
      timeout: timeoutMs,
    };
    await this.kc.applyToHTTPSOptions(opts);
    await new Promise<void>((resolve, reject) => {
      const req = https.request(opts, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => {
          if (res.statusCode === 200) resolve();
          else
            reject(
              new KubeUnreachableError(
                `${this.server}/readyz: HTTP ${res.statusCode}: ${
                  body
                    .trim()
                    .split('\n')
                    .filter((l) => l.startsWith('[-]'))
                    .join(', ') || body.trim().slice(0, 200)
                }`,
              ),
            );
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (e) =>
        reject(new KubeUnreachableError(`${this.server} is unreachable: ${e.message}`, { cause: e })),
      );
      req.end();
    });
  }

  async listNodes(): Promise<NodeInfo[]> {
    const r = await this.#call('list nodes', () => this.core.listNode());
    return r.items.map(toNodeInfo);
  }

  async listPods(fieldSelector?: string): Promise<PodInfo[]> {
    const r = await this.#call(`list pods${fieldSelector ? ` (${fieldSelector})` : ''}`, () =>
      this.core.listPodForAllNamespaces(fieldSelector ? { fieldSelector } : {}),
    );
    return r.items.map(toPodInfo);
  }

  async cordon(node: string): Promise<void> {
    const { setHeaderOptions, PatchStrategy } = await import('@kubernetes/client-node');
    await this.#call(`cordon ${node}`, () =>
      this.core.patchNode(
        { name: node, body: { spec: { unschedulable: true } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
  }

  async evict(namespace: string, name: string): Promise<EvictResult> {
    try {
      await this.#call(`evict ${namespace}/${name}`, () =>
        this.core.createNamespacedPodEviction({
          name,
          namespace,
          body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } },
        }),
      );
      return { evicted: true };
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause ?? e;
      const code = errCode(cause);
      if (code === 404) return { evicted: true };
      if (code === 429) return { evicted: false, ...pdbFromStatus((cause as { body?: unknown }).body) };
      throw e;
    }
  }
}

/**
 * A KubeApi over a kubeconfig's current context (TLS verified with its CA; client
 * certificate or token as the kubeconfig says).
 * @param kubeconfig the kubeconfig text (e.g. `locked/admin.conf`)
 * @param opts.callTimeoutMs bound on every list/patch/evict call @default 30000
 * @throws PlatformError when the kubeconfig names no cluster
 */
export async function kubeApiFrom(
  kubeconfig: string,
  opts: { callTimeoutMs?: number } = {},
): Promise<KubeApi> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  kc.loadFromString(kubeconfig);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new PlatformError('the kubeconfig has no current cluster');
  if (cluster.skipTLSVerify)
    throw new PlatformError('the kubeconfig disables TLS verification; refusing to use it');
  return new ClientNodeApi(kc, kc.makeApiClient(k8s.CoreV1Api), cluster.server, opts.callTimeoutMs ?? 30_000);
}
