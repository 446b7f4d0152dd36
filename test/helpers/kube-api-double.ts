import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  certificatePem,
  createCaCertificate,
  issueLeaf,
  newEcKey,
  privateKeyPem,
  validityFor,
} from '../../src/secrets/pki/x509.js';

/**
 * A TEST DOUBLE of the Kubernetes API server — not a Kubernetes API server.
 *
 * Why a double: no Kubernetes API server can run on this machine (none is packaged for the
 * registries it can reach), so the commands talk to this small HTTPS server through the
 * real client (`@kubernetes/client-node`), and only the server is a stand-in. It follows
 * the wire format of exactly what `validate` and `roll` use (Kubernetes API reference
 * v1.34), nothing more:
 *
 *   GET   /readyz                                  200 "ok" | 500 "[-]etcd failed: reason withheld"
 *   GET   /api/v1/nodes                            v1 NodeList
 *   GET   /api/v1/nodes/{name}                     v1 Node | 404 Status
 *   PATCH /api/v1/nodes/{name}                     merge/strategic-merge patch of spec.unschedulable
 *   GET   /api/v1/pods?fieldSelector=...           v1 PodList; selectors spec.nodeName, metadata.namespace,
 *                                                  metadata.name, status.phase with = / == / != joined by ","
 *   GET   /api/v1/namespaces/{ns}/pods             v1 PodList
 *   POST  /api/v1/namespaces/{ns}/pods/{p}/eviction  policy/v1 Eviction: 201, 404 when the pod is gone,
 *                                                  429 Status with details.causes[{type: DisruptionBudget,
 *                                                  message: "The disruption budget <pdb> needs <n> healthy
 *                                                  pods and has <m> currently"}] and Retry-After: 10, as
 *                                                  kubernetes pkg/registry/core/pod/storage/eviction.go
 *
 * TLS as a real API server: a CA generated at test time, a serving certificate for
 * 127.0.0.1, and client certificates required and checked against the CA (an unknown
 * client gets a TLS failure). {@link KubeDouble.kubeconfig} is an admin kubeconfig for it.
 *
 * PodDisruptionBudgets are modelled as `minAvailable` over a label selector (matchLabels):
 * an eviction is refused while it would leave fewer Ready matching pods than minAvailable.
 * An evicted pod is deleted; `onEvict` lets a test play the controller that recreates it.
 */

export interface DoubleNode {
  name: string;
  ready?: boolean;
  networkUnavailable?: boolean;
  unschedulable?: boolean;
  internalIp?: string;
  instanceId?: string;
  kubeletVersion?: string;
  labels?: Record<string, string>;
}

export interface DoublePod {
  namespace: string;
  name: string;
  nodeName?: string;
  phase?: string;
  ready?: boolean;
  priorityClassName?: string;
  /** a static pod's mirror pod (annotation kubernetes.io/config.mirror) */
  mirror?: boolean;
  daemonSet?: boolean;
  labels?: Record<string, string>;
  image?: string;
}

export interface DoublePdb {
  namespace: string;
  name: string;
  matchLabels: Record<string, string>;
  minAvailable: number;
}

/** One request as the double saw it (tests assert on them). */
export interface SeenRequest {
  method: string;
  path: string;
  /** the client certificate's CN */
  user: string;
  status: number;
  at: number;
}

export interface KubeDouble {
  /** https://127.0.0.1:<port> */
  server: string;
  /** an admin kubeconfig (CA, client certificate and key generated at test time) */
  kubeconfig: string;
  /** the same written to a file (0600) */
  kubeconfigFile: string;
  nodes: Map<string, DoubleNode>;
  pods: DoublePod[];
  pdbs: DoublePdb[];
  requests: SeenRequest[];
  /** false: /readyz answers 500 */
  ready: boolean;
  /** called after a pod is evicted (deleted), e.g. to reschedule it elsewhere */
  onEvict?: (pod: DoublePod) => void;
  close(): Promise<void>;
}

function nodeJson(n: DoubleNode) {
  const conditions = [
    {
      type: 'Ready',
      status: n.ready === false ? 'False' : 'True',
      reason: n.ready === false ? 'KubeletNotReady' : 'KubeletReady',
      message: n.ready === false ? 'container runtime network not ready' : 'kubelet is posting ready status',
    },
    {
      type: 'NetworkUnavailable',
      status: n.networkUnavailable ? 'True' : 'False',
      reason: n.networkUnavailable ? 'NoRouteCreated' : 'FlannelIsUp',
    },
  ];
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: n.labels ?? {} },
    spec: {
      ...(n.unschedulable ? { unschedulable: true } : {}),
      ...(n.instanceId ? { providerID: `aws:///eu-west-1a/${n.instanceId}` } : {}),
    },
    status: {
      conditions,
      addresses: n.internalIp ? [{ type: 'InternalIP', address: n.internalIp }] : [],
      nodeInfo: { kubeletVersion: n.kubeletVersion ?? 'v1.34.1' },
    },
  };
}

function podJson(p: DoublePod) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      namespace: p.namespace,
      name: p.name,
      labels: p.labels ?? {},
      ...(p.mirror ? { annotations: { 'kubernetes.io/config.mirror': 'a1b2c3' } } : {}),
      ...(p.daemonSet
        ? {
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: 'DaemonSet', name: p.name.split('-')[0], uid: 'u' },
            ],
          }
        : {}),
    },
    spec: {
      ...(p.nodeName ? { nodeName: p.nodeName } : {}),
      ...(p.priorityClassName ? { priorityClassName: p.priorityClassName } : {}),
      containers: [{ name: 'main', image: p.image ?? 'registry.k8s.io/pause:3.10' }],
    },
    status: {
      phase: p.phase ?? 'Running',
      conditions: [{ type: 'Ready', status: p.ready === false ? 'False' : 'True' }],
    },
  };
}

function status(code: number, reason: string, message: string, extra: object = {}) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
    ...extra,
  };
}

/** Field selector semantics (Kubernetes "Field Selectors" doc): `a=b`, `a==b`, `a!=b`, comma = AND. */
function fieldMatch(p: DoublePod, selector: string | null): boolean {
  if (!selector) return true;
  const value: Record<string, string> = {
    'spec.nodeName': p.nodeName ?? '',
    'metadata.namespace': p.namespace,
    'metadata.name': p.name,
    'status.phase': p.phase ?? 'Running',
  };
  return selector.split(',').every((term) => {
    const m = /^([a-zA-Z.]+)(!=|==|=)(.*)$/.exec(term);
    if (!m) throw new Error(`bad field selector term ${term}`);
    const [, field, op, want] = m;
    if (!(field! in value)) throw new Error(`field label not supported: ${field}`);
    return op === '!=' ? value[field!] !== want : value[field!] === want;
  });
}

function matches(labels: Record<string, string> | undefined, sel: Record<string, string>): boolean {
  return Object.entries(sel).every(([k, v]) => labels?.[k] === v);
}

/**
 * Starts the double on 127.0.0.1 (a free port) with a CA, serving and client certificates
 * generated now. Stop it with `close()`.
 */
export async function startKubeDouble(
  init: { nodes?: DoubleNode[]; pods?: DoublePod[]; pdbs?: DoublePdb[] } = {},
): Promise<KubeDouble> {
  const now = new Date();
  const caKey = await newEcKey();
  const ca = await createCaCertificate('kube-double-ca', caKey, validityFor(now, 1), 'double CA');
  const signer = { cert: ca, key: caKey, where: 'double CA' };
  const serverKey = await newEcKey();
  const serverCert = await issueLeaf(
    signer,
    serverKey,
    { cn: 'kube-apiserver', o: [], usages: ['serverAuth'], dns: ['localhost'], ips: ['127.0.0.1'] },
    validityFor(now, 1),
  );
  const clientKey = await newEcKey();
  const clientCert = await issueLeaf(
    signer,
    clientKey,
    { cn: 'kubernetes-admin', o: ['kubeadm:cluster-admins'], usages: ['clientAuth'], dns: [], ips: [] },
    validityFor(now, 1),
  );
  const caPem = certificatePem(ca);

  const d: KubeDouble = {
    server: '',
    kubeconfig: '',
    kubeconfigFile: '',
    nodes: new Map((init.nodes ?? []).map((n) => [n.name, n])),
    pods: init.pods ?? [],
    pdbs: init.pdbs ?? [],
    requests: [],
    ready: true,
    close: async () => {},
  };

  const server = https.createServer(
    {
      key: privateKeyPem(serverKey),
      cert: certificatePem(serverCert),
      ca: caPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'https://double');
        const user =
          (req.socket as import('node:tls').TLSSocket).getPeerCertificate?.()?.subject?.CN?.toString() ?? '';
        const send = (code: number, json: unknown, headers: Record<string, string> = {}) => {
          d.requests.push({
            method: req.method ?? '',
            path: url.pathname + url.search,
            user,
            status: code,
            at: Date.now(),
          });
          res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
          res.end(typeof json === 'string' ? json : JSON.stringify(json));
        };
        try {
          route(req.method ?? 'GET', url, body, send);
        } catch (e) {
          send(400, status(400, 'BadRequest', (e as Error).message));
        }
      });
    },
  );

  function route(
    method: string,
    url: URL,
    body: string,
    send: (code: number, json: unknown, headers?: Record<string, string>) => void,
  ): void {
    const p = url.pathname;
    if (p === '/readyz' && method === 'GET') {
      if (d.ready) send(200, 'ok');
      else send(500, '[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed');
      return;
    }
    if (p === '/api/v1/nodes' && method === 'GET') {
      send(200, {
        kind: 'NodeList',
        apiVersion: 'v1',
        metadata: { resourceVersion: '1' },
        items: [...d.nodes.values()].map(nodeJson),
      });
      return;
    }
    let m = /^\/api\/v1\/nodes\/([^/]+)$/.exec(p);
    if (m) {
      const n = d.nodes.get(decodeURIComponent(m[1]!));
      if (!n) {
        send(404, status(404, 'NotFound', `nodes "${m[1]}" not found`));
        return;
      }
      if (method === 'GET') send(200, nodeJson(n));
      else if (method === 'PATCH') {
        const patch = JSON.parse(body) as { spec?: { unschedulable?: boolean } };
        if (patch.spec && 'unschedulable' in patch.spec) n.unschedulable = Boolean(patch.spec.unschedulable);
        send(200, nodeJson(n));
      } else send(405, status(405, 'MethodNotAllowed', method));
      return;
    }
    const listPods = (ns: string | null) => {
      const sel = url.searchParams.get('fieldSelector');
      const items = d.pods
        .filter((x) => (ns === null || x.namespace === ns) && fieldMatch(x, sel))
        .map(podJson);
      send(200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items });
    };
    if (p === '/api/v1/pods' && method === 'GET') {
      listPods(null);
      return;
    }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(p);
    if (m && method === 'GET') {
      listPods(decodeURIComponent(m[1]!));
      return;
    }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/eviction$/.exec(p);
    if (m && method === 'POST') {
      const [ns, name] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
      const ev = JSON.parse(body) as { apiVersion?: string; kind?: string };
      if (ev.kind !== 'Eviction' || ev.apiVersion !== 'policy/v1') {
        send(
          400,
          status(400, 'BadRequest', `expected a policy/v1 Eviction, got ${ev.apiVersion}/${ev.kind}`),
        );
        return;
      }
      const i = d.pods.findIndex((x) => x.namespace === ns && x.name === name);
      if (i < 0) {
        send(404, status(404, 'NotFound', `pods "${name}" not found`));
        return;
      }
      const pod = d.pods[i]!;
      for (const pdb of d.pdbs.filter((b) => b.namespace === ns && matches(pod.labels, b.matchLabels))) {
        const healthy = d.pods.filter(
          (x) =>
            x.namespace === ns &&
            matches(x.labels, pdb.matchLabels) &&
            x.ready !== false &&
            (x.phase ?? 'Running') === 'Running',
        ).length;
        if (healthy - 1 < pdb.minAvailable) {
          send(
            429,
            status(
              429,
              'TooManyRequests',
              "Cannot evict pod as it would violate the pod's disruption budget.",
              {
                details: {
                  causes: [
                    {
                      reason: 'DisruptionBudget',
                      message: `The disruption budget ${pdb.name} needs ${pdb.minAvailable} healthy pods and has ${healthy} currently`,
                    },
                  ],
                  retryAfterSeconds: 10,
                },
              },
            ),
            { 'Retry-After': '10' },
          );
          return;
        }
      }
      d.pods.splice(i, 1);
      send(201, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: ns } });
      d.onEvict?.(pod);
      return;
    }
    send(404, status(404, 'NotFound', `the double does not serve ${method} ${p}`));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  d.server = `https://127.0.0.1:${port}`;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  d.kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: double
  cluster:
    server: ${d.server}
    certificate-authority-data: ${b64(caPem)}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: ${b64(certificatePem(clientCert))}
    client-key-data: ${b64(privateKeyPem(clientKey))}
contexts:
- name: kubernetes-admin@double
  context: { cluster: double, user: kubernetes-admin }
current-context: kubernetes-admin@double
`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kp-kube-double-'));
  d.kubeconfigFile = path.join(dir, 'admin.conf');
  writeFileSync(d.kubeconfigFile, d.kubeconfig, { mode: 0o600 });
  d.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      });
    });
  return d;
}
