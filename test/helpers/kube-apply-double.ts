import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * A TEST DOUBLE of the Kubernetes API server — not a Kubernetes API server — for what
 * `kubectl apply --server-side --prune --applyset=...` (kubectl v1.27+, KUBECTL_APPLYSET=true)
 * and the kp-addons script ask of it, so that the real kubectl binary can be run where no API
 * server can (none is packaged for this machine's registries). Wire format as the Kubernetes
 * API reference v1.34, limited to:
 *
 *   GET    /version, /readyz                         version.Info, "ok"
 *   GET    /openapi/v3[/{gv}]                         a PATCH operation per kind taking fieldValidation (so
 *                                                   kubectl leaves validation to the server)
 *   GET    /api, /apis, /api/v1, /apis/{g}/{v}        legacy discovery (APIVersions, APIGroupList,
 *                                                   APIResourceList) for the kinds in {@link KINDS};
 *                                                   aggregated discovery answers 404, so
 *                                                   kubectl falls back to these
 *   GET    <collection>?labelSelector=k=v,k           a <Kind>List (equality and existence selectors)
 *   GET    <collection>/{name}                        the object | 404 Status NotFound
 *   PATCH  <collection>/{name}                        apply (application/apply-patch+yaml: the object is
 *                                                   created or its labels, annotations and body replaced),
 *                                                   merge and strategic-merge patches (deep merge; 404
 *                                                   when absent)
 *   POST   <collection>                               create | 409 AlreadyExists
 *   DELETE <collection>/{name}                        deletes | 404
 *
 * A CustomResourceDefinition, once stored, serves its kind like the built-in ones.
 *
 * Plain HTTP on 127.0.0.1 without authentication: the test is about what kubectl sends, not
 * about TLS (test/integration/cloud-init.test.ts covers kp-addons' TLS with a real kubectl).
 */

/** The kinds the double serves: group/version, resource, namespaced. */
export const KINDS: Record<string, { gv: string; resource: string; namespaced: boolean }> = {
  Namespace: { gv: 'v1', resource: 'namespaces', namespaced: false },
  ServiceAccount: { gv: 'v1', resource: 'serviceaccounts', namespaced: true },
  ConfigMap: { gv: 'v1', resource: 'configmaps', namespaced: true },
  Service: { gv: 'v1', resource: 'services', namespaced: true },
  Secret: { gv: 'v1', resource: 'secrets', namespaced: true },
  Node: { gv: 'v1', resource: 'nodes', namespaced: false },
  ClusterRole: { gv: 'rbac.authorization.k8s.io/v1', resource: 'clusterroles', namespaced: false },
  ClusterRoleBinding: {
    gv: 'rbac.authorization.k8s.io/v1',
    resource: 'clusterrolebindings',
    namespaced: false,
  },
  Role: { gv: 'rbac.authorization.k8s.io/v1', resource: 'roles', namespaced: true },
  RoleBinding: { gv: 'rbac.authorization.k8s.io/v1', resource: 'rolebindings', namespaced: true },
  DaemonSet: { gv: 'apps/v1', resource: 'daemonsets', namespaced: true },
  Deployment: { gv: 'apps/v1', resource: 'deployments', namespaced: true },
  CSIDriver: { gv: 'storage.k8s.io/v1', resource: 'csidrivers', namespaced: false },
  StorageClass: { gv: 'storage.k8s.io/v1', resource: 'storageclasses', namespaced: false },
  APIService: { gv: 'apiregistration.k8s.io/v1', resource: 'apiservices', namespaced: false },
  CustomResourceDefinition: {
    gv: 'apiextensions.k8s.io/v1',
    resource: 'customresourcedefinitions',
    namespaced: false,
  },
  CertificateSigningRequest: {
    gv: 'certificates.k8s.io/v1',
    resource: 'certificatesigningrequests',
    namespaced: false,
  },
};

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
};

export interface ApplyDouble {
  url: string;
  /** writes a kubeconfig for the double into `dir`; returns its path */
  kubeconfig(dir: string): string;
  /** non-GET requests, as `METHOD path` (query string dropped) */
  writes: string[];
  /** the stored objects, as `Kind namespace/name` (cluster-scoped: `Kind name`) */
  keys(): string[];
  get(kind: string, name: string, namespace?: string): Obj | undefined;
  /** stores an object directly, as if someone else had created it */
  put(obj: Obj): void;
  close(): Promise<void>;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function merge(base: unknown, patch: unknown): unknown {
  if (!isObject(base) || !isObject(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = merge(out[k], v);
  }
  return out;
}

const status = (code: number, reason: string, message: string) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason,
  code,
});

/** Starts the double on a free port of 127.0.0.1. */
export async function startApplyDouble(): Promise<ApplyDouble> {
  const store = new Map<string, Obj>();
  const writes: string[] = [];
  let rv = 1;
  const keyOf = (kind: string, name: string, ns?: string) =>
    KINDS[kind]!.namespaced ? `${kind} ${ns}/${name}` : `${kind} ${name}`;
  const byResource = new Map(Object.entries(KINDS).map(([kind, k]) => [`${k.gv} ${k.resource}`, kind]));

  const send = (res: ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const discovery = (url: string): unknown => {
    if (url === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
    const gvs = [...new Set(Object.values(KINDS).map((k) => k.gv))];
    if (url === '/apis') {
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: gvs
          .filter((gv) => gv.includes('/'))
          .map((gv) => {
            const [name, version] = gv.split('/') as [string, string];
            const v = { groupVersion: gv, version };
            return { name, versions: [v], preferredVersion: v };
          }),
      };
    }
    const gv = url === '/api/v1' ? 'v1' : url.replace(/^\/apis\//, '');
    if (!gvs.includes(gv)) return undefined;
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: gv,
      resources: Object.entries(KINDS)
        .filter(([, k]) => k.gv === gv)
        .map(([kind, k]) => ({
          name: k.resource,
          singularName: kind.toLowerCase(),
          namespaced: k.namespaced,
          kind,
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
          ...(kind === 'CertificateSigningRequest' ? { shortNames: ['csr'] } : {}),
        })),
    };
  };

  // OpenAPI v3 (/openapi/v3 and one document per group/version), only as far as kubectl reads
  // it to learn that PATCH takes fieldValidation (server-side validation, so it skips its own):
  // a PATCH operation per kind with x-kubernetes-group-version-kind and that query parameter.
  const openapi = (p: string): unknown => {
    const gvs = [...new Set(Object.values(KINDS).map((k) => k.gv))];
    const keyOfGv = (gv: string) => (gv === 'v1' ? 'api/v1' : `apis/${gv}`);
    if (p === '/openapi/v3')
      return {
        paths: Object.fromEntries(
          gvs.map((gv) => [
            keyOfGv(gv),
            { serverRelativeURL: `/openapi/v3/${keyOfGv(gv)}?hash=${gv.length}` },
          ]),
        ),
      };
    const gv = gvs.find((g) => p === `/openapi/v3/${keyOfGv(g)}`);
    if (!gv) return undefined;
    const paths: Record<string, unknown> = {};
    for (const [kind, k] of Object.entries(KINDS).filter(([, x]) => x.gv === gv)) {
      const [group, version] = gv.includes('/') ? (gv.split('/') as [string, string]) : ['', gv];
      const ns = k.namespaced ? '/namespaces/{namespace}' : '';
      paths[`/${keyOfGv(gv)}${ns}/${k.resource}/{name}`] = {
        patch: {
          'x-kubernetes-group-version-kind': { group, version, kind },
          parameters: [{ name: 'fieldValidation', in: 'query', schema: { type: 'string' } }],
          responses: { '200': { description: 'OK' } },
        },
      };
    }
    return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.34.2' }, paths };
  };

  const handle = (req: IncomingMessage, body: string, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://double');
    const p = u.pathname.replace(/\/$/, '');
    const method = req.method ?? 'GET';
    if (method !== 'GET') writes.push(`${method} ${p}`);
    if (p === '/version') return send(res, 200, { major: '1', minor: '34', gitVersion: 'v1.34.2' });
    if (p === '/readyz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('ok');
    }
    if (method === 'GET' && p.startsWith('/openapi/v3')) {
      const d = openapi(p);
      if (d) return send(res, 200, d);
    }
    if (method === 'GET' && (p === '/api' || p === '/apis' || /^\/apis?\/[^/]+(\/[^/]+)?$/.test(p))) {
      const d = discovery(p);
      if (d) return send(res, 200, d);
    }
    // /api/v1[/namespaces/{ns}]/{resource}[/{name}] or /apis/{g}/{v}[/namespaces/{ns}]/{resource}[/{name}]
    const m = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?$/.exec(
      p,
    );
    const kind = m ? byResource.get(`${m[1] ?? m[2]} ${m[4]}`) : undefined;
    if (!m || !kind) return send(res, 404, status(404, 'NotFound', `the server could not find ${p}`));
    const [, , , ns, , name] = m;
    const k = KINDS[kind]!;
    if (k.namespaced !== (ns !== undefined) && !(name === undefined && method === 'GET'))
      return send(
        res,
        404,
        status(404, 'NotFound', `${p}: ${kind} is ${k.namespaced ? '' : 'not '}namespaced`),
      );
    if (name === undefined && method === 'GET') {
      const selector = (u.searchParams.get('labelSelector') ?? '')
        .split(',')
        .filter(Boolean)
        .map((s) => s.split('=') as [string, string]);
      const items = [...store.values()].filter(
        (o) =>
          o.kind === kind &&
          (ns === undefined || o.metadata.namespace === ns) &&
          selector.every(([sk, sv]) =>
            sv === undefined ? o.metadata.labels?.[sk] !== undefined : o.metadata.labels?.[sk] === sv,
          ),
      );
      return send(res, 200, {
        kind: `${kind}List`,
        apiVersion: k.gv,
        metadata: { resourceVersion: String(rv) },
        items,
      });
    }
    if (name === undefined && method === 'POST') {
      const obj = parseYaml(body) as Obj;
      const key = keyOf(kind, obj.metadata.name, ns);
      if (store.has(key)) return send(res, 409, status(409, 'AlreadyExists', `${key} already exists`));
      return send(res, 201, save(kind, obj, ns));
    }
    const key = keyOf(kind, name!, ns);
    const existing = store.get(key);
    if (method === 'GET')
      return existing
        ? send(res, 200, existing)
        : send(res, 404, status(404, 'NotFound', `${key} not found`));
    if (method === 'DELETE') {
      if (!existing) return send(res, 404, status(404, 'NotFound', `${key} not found`));
      store.delete(key);
      return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' });
    }
    if (method === 'PATCH') {
      const type = req.headers['content-type'] ?? '';
      const patch = parseYaml(body) as Obj;
      if (type.startsWith('application/apply-patch')) {
        const next = existing
          ? ({ ...existing, ...patch, metadata: { ...existing.metadata, ...patch.metadata } } as Obj)
          : patch;
        return send(res, existing ? 200 : 201, save(kind, next, ns));
      }
      if (!existing) return send(res, 404, status(404, 'NotFound', `${key} not found`));
      return send(res, 200, save(kind, merge(existing, patch) as Obj, ns));
    }
    return send(res, 405, status(405, 'MethodNotAllowed', `${method} ${p}`));
  };

  function save(kind: string, obj: Obj, ns?: string): Obj {
    const k = KINDS[kind]!;
    const stored: Obj = {
      ...obj,
      apiVersion: k.gv,
      kind,
      metadata: {
        ...obj.metadata,
        ...(k.namespaced ? { namespace: ns ?? obj.metadata.namespace } : {}),
        uid: (obj.metadata.uid as string | undefined) ?? `uid-${rv}`,
        resourceVersion: String(++rv),
      },
    };
    store.set(keyOf(kind, stored.metadata.name, stored.metadata.namespace), stored);
    // a CustomResourceDefinition serves its kind from now on (discovery, OpenAPI, objects)
    if (kind === 'CustomResourceDefinition') {
      const spec = stored.spec as {
        group: string;
        names: { kind: string; plural: string };
        scope: string;
        versions: { name: string }[];
      };
      KINDS[spec.names.kind] = {
        gv: `${spec.group}/${spec.versions[0]!.name}`,
        resource: spec.names.plural,
        namespaced: spec.scope === 'Namespaced',
      };
      byResource.set(`${spec.group}/${spec.versions[0]!.name} ${spec.names.plural}`, spec.names.kind);
    }
    return stored;
  }

  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      try {
        handle(req, body, res);
      } catch (e) {
        send(res, 500, status(500, 'InternalError', String(e)));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    writes,
    kubeconfig(dir: string) {
      const file = path.join(dir, 'double.kubeconfig');
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'double', cluster: { server: url } }],
          users: [{ name: 'double', user: {} }],
          contexts: [{ name: 'double', context: { cluster: 'double', user: 'double' } }],
          'current-context': 'double',
        }),
        { mode: 0o600 },
      );
      return file;
    },
    keys: () => [...store.keys()].sort(),
    get: (kind, name, namespace) => store.get(keyOf(kind, name, namespace)),
    put: (obj) => {
      save(obj.kind, obj, obj.metadata.namespace);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
