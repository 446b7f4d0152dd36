import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { parseEnvironment } from '../../src/config/load.js';
import { etcdMembers } from '../../src/config/topology.js';
import { UserError, ValidationError } from '../../src/errors.js';
import { listFiles } from '../../src/fsutil.js';
import {
  type ManifestValues,
  manifestValues,
  type RenderedFile,
  renderTree,
  validateYaml,
  yamlQuote,
} from '../../src/manifests/index.js';
import { toolkitRoot } from '../../src/paths.js';
import { ensurePki, pkiPlanFor } from '../../src/secrets/pki/index.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';

/** The real templates (platform/manifests) rendered for the playground environment. */

const root = toolkitRoot();
const templateDir = path.join(root, 'platform', 'manifests');

async function playText(): Promise<string> {
  return readFile(path.join(root, 'environments', 'play.env'), 'utf8');
}

async function playConfig(extra = '') {
  return parseEnvironment('play-test', (await playText()) + extra, 'play.env');
}

interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface Probe {
  httpGet: { host?: string; path: string; port: string | number; scheme: string };
}
interface Container {
  name: string;
  image: string;
  command: string[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources: { requests: Record<string, string> };
  volumeMounts: Mount[];
}
interface Pod {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    hostNetwork: boolean;
    priorityClassName: string;
    securityContext: { seccompProfile: { type: string } };
    containers: Container[];
    volumes: { name: string; hostPath: { path: string; type: string } }[];
  };
}

function pods(files: RenderedFile[]): Map<string, Pod> {
  const out = new Map<string, Pod>();
  for (const f of files.filter((f) => f.path.startsWith('secure/manifests/'))) {
    const pod = parse(f.content) as Pod;
    out.set(pod.metadata.name, pod);
  }
  return out;
}

/** `--name=value` flags of a command as a map (the first element is the binary). */
function flags(command: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const arg of command.slice(1)) {
    const m = /^--([a-z0-9-]+)=(.*)$/.exec(arg);
    expect(m).not.toBeNull();
    expect(out.has(m![1]!)).toBe(false); // no flag given twice
    out.set(m![1]!, m![2]!);
  }
  return out;
}

/** Files the PKI (and the node) put on masters: kubeadm's layout under /etc/kubernetes. */
/**
 * Every file a master has in /etc/kubernetes: what the PKI generates into the layers a
 * master syncs (common/, secure/, mapped `<layer>/<rest>` → /etc/kubernetes/<rest> by
 * manifest-sync), what the templates render, and the etcd config the node writes at boot.
 * Filled in beforeAll from a real ensurePki run, so a path the PKI does not produce fails.
 */
const NODE_FILES = new Set<string>(['/etc/kubernetes/etcd/config.yaml']);

let files: RenderedFile[];
let byName: Map<string, Pod>;
beforeAll(async () => {
  const cfg = await playConfig();
  files = await renderTree(templateDir, manifestValues(cfg, FIXTURE_PKI));
  byName = pods(files);
  const secrets = await mkdtemp(path.join(tmpdir(), 'manifests-pki-'));
  await ensurePki(secrets, pkiPlanFor(cfg));
  for (const layer of ['common', 'secure']) {
    for (const f of await listFiles(path.join(secrets, layer))) NODE_FILES.add(`/etc/kubernetes/${f}`);
  }
  for (const f of files) NODE_FILES.add(`/etc/kubernetes/${f.path.split('/').slice(1).join('/')}`);
  await rm(secrets, { recursive: true, force: true });
});

describe('platform/manifests for play.env', () => {
  test('renders the four control-plane static pods and the add-ons, all files 0600', () => {
    // the add-ons (secure/addons/) are listed exactly by test/unit/addons.test.ts
    const paths = files.map((f) => f.path);
    expect(paths.filter((p) => !p.startsWith('secure/addons/'))).toEqual([
      'secure/audit-policy.yaml',
      'secure/manifests/etcd.yaml',
      'secure/manifests/kube-apiserver.yaml',
      'secure/manifests/kube-controller-manager.yaml',
      'secure/manifests/kube-scheduler.yaml',
    ]);
    expect(paths.filter((p) => p.startsWith('secure/addons/')).length).toBeGreaterThan(0);
    for (const f of files) expect(f.mode).toBe(0o600);
    expect([...byName.keys()].sort()).toEqual([
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-scheduler',
    ]);
  });

  test('every pod is a kubeadm-style static pod in kube-system', () => {
    for (const [name, pod] of byName) {
      expect(pod.apiVersion).toBe('v1');
      expect(pod.kind).toBe('Pod');
      expect(pod.metadata.namespace).toBe('kube-system');
      expect(pod.spec.hostNetwork).toBe(true);
      expect(pod.spec.priorityClassName).toBe('system-node-critical');
      expect(pod.spec.securityContext.seccompProfile.type).toBe('RuntimeDefault');
      expect(pod.spec.containers).toHaveLength(1);
      const c = pod.spec.containers[0]!;
      expect(c.name).toBe(name);
      expect(c.command[0]).toBe(name);
      expect(Object.keys(c.resources.requests)).toContain('cpu');
      expect(c.livenessProbe).toBeDefined();
      expect(c.startupProbe).toBeDefined();
    }
  });

  test('images are the release of the environment, from registry.k8s.io', () => {
    const image = (n: string) => byName.get(n)!.spec.containers[0]!.image;
    expect(image('kube-apiserver')).toBe('registry.k8s.io/kube-apiserver:v1.34.2');
    expect(image('kube-controller-manager')).toBe('registry.k8s.io/kube-controller-manager:v1.34.2');
    expect(image('kube-scheduler')).toBe('registry.k8s.io/kube-scheduler:v1.34.2');
    expect(image('etcd')).toBe('registry.k8s.io/etcd:3.6.4-0');
  });

  test('another release in the environment file changes every image', async () => {
    const cfg = await playConfig('KUBERNETES_VERSION=v1.33.5\nETCD_VERSION=v3.5.21\n');
    const other = pods(await renderTree(templateDir, manifestValues(cfg, FIXTURE_PKI)));
    expect(other.get('kube-apiserver')!.spec.containers[0]!.image).toBe(
      'registry.k8s.io/kube-apiserver:v1.33.5',
    );
    expect(other.get('kube-scheduler')!.spec.containers[0]!.image).toBe(
      'registry.k8s.io/kube-scheduler:v1.33.5',
    );
    expect(other.get('etcd')!.spec.containers[0]!.image).toBe('registry.k8s.io/etcd:3.5.21-0');
  });

  test('--etcd-servers lists every member over https, in member order', async () => {
    const cfg = await playConfig();
    const apiserver = flags(byName.get('kube-apiserver')!.spec.containers[0]!.command);
    const want = etcdMembers(cfg).map((m) => `https://${m.ip}:2379`);
    expect(want).toHaveLength(3);
    expect(apiserver.get('etcd-servers')!.split(',')).toEqual(want);
  });

  test('--etcd-servers follows MASTER_COUNT', async () => {
    const five = parseEnvironment(
      'play-test',
      (await playText()).replace(/^MASTER_COUNT=.*$/m, 'MASTER_COUNT=5'),
      'play.env',
    );
    const api = pods(await renderTree(templateDir, manifestValues(five, FIXTURE_PKI))).get('kube-apiserver')!;
    const servers = flags(api.spec.containers[0]!.command).get('etcd-servers')!.split(',');
    expect(servers).toEqual(etcdMembers(five).map((m) => `https://${m.ip}:2379`));
    expect(new Set(servers).size).toBe(5);
  });

  test('kube-apiserver: TLS, Node+RBAC, bootstrap tokens, issuer, ranges, front proxy', () => {
    const f = flags(byName.get('kube-apiserver')!.spec.containers[0]!.command);
    expect(f.get('authorization-mode')).toBe('Node,RBAC');
    expect(f.get('enable-admission-plugins')).toContain('NodeRestriction');
    expect(f.get('enable-bootstrap-token-auth')).toBe('true');
    expect(f.get('service-account-issuer')).toBe('https://kube.play-test.internal');
    expect(f.get('service-cluster-ip-range')).toBe('10.32.0.0/16');
    expect(f.get('tls-min-version')).toBe('VersionTLS12');
    expect(f.get('profiling')).toBe('false');
    expect(f.get('bind-address')).toBe('0.0.0.0');
    expect(f.has('advertise-address')).toBe(false);
    expect(f.get('secure-port')).toBe('6443');
    expect(f.get('requestheader-client-ca-file')).toBe('/etc/kubernetes/pki/front-proxy-ca.crt');
    expect(f.get('proxy-client-cert-file')).toBe('/etc/kubernetes/pki/front-proxy-client.crt');
    expect(f.get('requestheader-allowed-names')).toBe('front-proxy-client');
    expect(f.get('etcd-cafile')).toBe('/etc/kubernetes/pki/etcd/ca.crt');
    expect(f.get('client-ca-file')).toBe('/etc/kubernetes/pki/ca.crt');
    expect(f.get('audit-log-path')).toBe('/var/log/kubernetes/audit.log');
  });

  test('kube-controller-manager: signing CA, service accounts, pod range, loopback only', () => {
    const f = flags(byName.get('kube-controller-manager')!.spec.containers[0]!.command);
    expect(f.get('cluster-signing-cert-file')).toBe('/etc/kubernetes/pki/ca.crt');
    expect(f.get('cluster-signing-key-file')).toBe('/etc/kubernetes/pki/ca.key');
    expect(f.get('service-account-private-key-file')).toBe('/etc/kubernetes/pki/sa.key');
    expect(f.get('root-ca-file')).toBe('/etc/kubernetes/pki/ca.crt');
    expect(f.get('cluster-cidr')).toBe('10.200.0.0/16');
    expect(f.get('allocate-node-cidrs')).toBe('true');
    expect(f.get('use-service-account-credentials')).toBe('true');
    expect(f.get('kubeconfig')).toBe('/etc/kubernetes/controller-manager.conf');
    expect(f.get('bind-address')).toBe('127.0.0.1');
    expect(f.get('cluster-name')).toBe('play-test');
  });

  test('kube-scheduler: its kubeconfig, loopback only', () => {
    const f = flags(byName.get('kube-scheduler')!.spec.containers[0]!.command);
    expect(f.get('kubeconfig')).toBe('/etc/kubernetes/scheduler.conf');
    expect(f.get('bind-address')).toBe('127.0.0.1');
  });

  test('etcd runs from the config file the node writes, with its data on /var/lib/etcd', () => {
    const c = byName.get('etcd')!.spec.containers[0]!;
    expect(c.command).toEqual(['etcd', '--config-file=/etc/kubernetes/etcd/config.yaml']);
    expect(c.volumeMounts.map((m) => m.mountPath).sort()).toEqual([
      '/etc/kubernetes/etcd',
      '/etc/kubernetes/pki/etcd',
      '/var/lib/etcd',
    ]);
  });

  test('no insecure ports, no skipped TLS verification, no anonymous auth switched on', () => {
    for (const f of files) {
      expect(f.content).not.toMatch(/insecure-port/);
      expect(f.content).not.toMatch(/insecure-skip-tls-verify/);
      expect(f.content).not.toMatch(/--anonymous-auth=true/);
      expect(f.content).not.toMatch(/--port=/);
      expect(f.content).not.toMatch(/http:\/\/(?!127\.0\.0\.1)/);
    }
  });

  test('control-plane probes are HTTPS on the secure ports; etcd only over loopback', () => {
    const secure: Record<string, number> = {
      'kube-apiserver': 6443,
      'kube-controller-manager': 10257,
      'kube-scheduler': 10259,
    };
    for (const [name, pod] of byName) {
      const c = pod.spec.containers[0]!;
      const probes = [c.livenessProbe, c.readinessProbe, c.startupProbe].filter(
        (p): p is Probe => p !== undefined,
      );
      for (const p of probes) {
        const port = c.ports!.find((x) => x.name === p.httpGet.port)!.containerPort;
        if (name === 'etcd') {
          expect(p.httpGet.host).toBe('127.0.0.1');
          expect(port).toBe(2381);
        } else {
          expect(p.httpGet.scheme).toBe('HTTPS');
          expect(port).toBe(secure[name]);
          expect(flags(c.command).get('secure-port')).toBe(String(port));
        }
      }
    }
  });

  test('every file a flag names is a kubeadm path, visible in the container through a read-only hostPath mount', () => {
    for (const pod of byName.values()) {
      const c = pod.spec.containers[0]!;
      const volumes = new Map(pod.spec.volumes.map((v) => [v.name, v.hostPath.path]));
      for (const m of c.volumeMounts) {
        // host path and container path are the same, so flags can name host paths
        expect(volumes.get(m.name)).toBe(m.mountPath);
      }
      const paths = c.command.flatMap((arg) => {
        const value = arg.split('=').slice(1).join('=');
        return value.startsWith('/etc/') ? [value] : [];
      });
      expect(paths.length).toBeGreaterThan(0);
      for (const p of paths) {
        expect(NODE_FILES).toContain(p);
        const mount = c.volumeMounts.find((m) => p === m.mountPath || p.startsWith(`${m.mountPath}/`));
        expect({ path: p, mounted: mount !== undefined, readOnly: mount?.readOnly }).toEqual({
          path: p,
          mounted: true,
          readOnly: true,
        });
      }
    }
  });

  test('only log and data directories are mounted writable', () => {
    const writable = [...byName.values()].flatMap((pod) =>
      pod.spec.containers[0]!.volumeMounts.filter((m) => !m.readOnly).map((m) => m.mountPath),
    );
    expect(writable.sort()).toEqual(['/var/lib/etcd', '/var/log/kubernetes']);
  });

  test('deterministic: rendering twice gives the same bytes', async () => {
    const again = await renderTree(templateDir, manifestValues(await playConfig(), FIXTURE_PKI));
    expect(again).toEqual(files);
  });

  test('the audit policy records metadata only, never request bodies', () => {
    const policy = parse(files.find((f) => f.path === 'secure/audit-policy.yaml')!.content) as {
      rules: { level: string }[];
    };
    const levels = new Set(policy.rules.map((r) => r.level));
    expect([...levels].sort()).toEqual(['Metadata', 'None']);
    expect(policy.rules.at(-1)).toEqual({ level: 'Metadata' });
  });
});

describe('manifestValues', () => {
  test('the Kubernetes CA becomes the caBundle (base64 of its PEM); anything but one CA certificate is refused', async () => {
    const cfg = await playConfig();
    expect(Buffer.from(manifestValues(cfg, FIXTURE_PKI).kubernetesCaBundle, 'base64').toString('utf8')).toBe(
      FIXTURE_PKI.kubernetesCaPem,
    );
    const leaf = await readFile(
      path.join(toolkitRoot(), 'test', 'fixtures', 'pki', 'metrics-server-leaf.crt'),
      'utf8',
    );
    // a private key, generated now: one PEM block that is not a certificate
    const { generateKeyPairSync } = await import('node:crypto');
    const keyPem = generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const keyLine = keyPem.split('\n')[0]!.replace(/[-]/g, '\\-');
    for (const [pem, message] of [
      ['', /found 0 PEM block/],
      [keyPem, new RegExp(`found 1 PEM block\\(s\\) \\(${keyLine}\\)`)],
      [`${FIXTURE_PKI.kubernetesCaPem}${FIXTURE_PKI.kubernetesCaPem}`, /found 2 PEM block/],
      ['-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n', /not a readable X.509/],
      [leaf, /not a CA certificate/],
    ] as const) {
      const err = (() => {
        try {
          manifestValues(cfg, { kubernetesCaPem: pem });
          return undefined;
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('AAAA');
    }
  });

  test('derives names, addresses and images from the environment and its topology', async () => {
    const cfg = await playConfig();
    const v = manifestValues(cfg, FIXTURE_PKI);
    expect(v.environment).toBe('play-test');
    expect(v.kubernetesServiceIp).toBe('10.32.0.1');
    expect(v.clusterDnsIp).toBe('10.32.0.10');
    expect(v.kubeapiInternalName).toBe('kube.play-test.internal');
    expect(v.kubeapiPublicName).toBe('kube-play-test.play.example.com');
    expect(v.serviceAccountIssuer).toBe('https://kube.play-test.internal');
    expect(v.etcdImageTag).toBe('3.6.4-0');
    expect(v.etcdMembers.map((m) => [m.name, m.ip, m.dnsName, m.peerUrl])).toEqual(
      etcdMembers(cfg).map((m) => [m.name, m.ip, m.dnsName, `https://${m.ip}:2380`]),
    );
  });

  test('a pod range too small for MASTER_COUNT + WORKER_MAX nodes is a UserError naming POD_CIDR', async () => {
    const text = (await playText()).replace(/^WORKER_MAX=.*$/m, 'WORKER_MAX=300');
    const cfg = parseEnvironment('play-test', text, 'play.env');
    const err = (() => {
      try {
        manifestValues(cfg, FIXTURE_PKI);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as ValidationError).problems[0]).toMatchObject({ file: 'play.env', key: 'POD_CIDR' });
    expect((err as Error).message).toMatch(/holds 256 node pod ranges .* up to 303 nodes/);
    // /15 gives 512 ranges: enough
    const wider = parseEnvironment('play-test', `${text}POD_CIDR=10.200.0.0/15\n`, 'play.env');
    expect(manifestValues(wider, FIXTURE_PKI).podCidr).toBe('10.200.0.0/15');
  });
});

describe('helpers', () => {
  const hostile = [
    'plain',
    'a: b # c',
    '"quoted" and \\backslash\\',
    'multi\nline\r\n\ttabbed',
    '- [x] {y}',
    '*alias &anchor !tag %directive @at `tick`',
    'yes',
    'null',
    '0x1F',
    'ünïcödé \u2028 \u0085 \ufeff \u007f',
    '',
  ];

  test('yamlQuote reads back as exactly the input, whatever it holds', () => {
    for (const s of hostile) {
      expect(parse(`v: ${yamlQuote(s)}\n`)).toEqual({ v: s });
      expect(yamlQuote(s)).not.toMatch(/[\n\r\u0085\u2028\u2029\ufeff]/);
    }
  });

  async function renderOne(template: string, values: ManifestValues): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'kp-manifests-helpers-'));
    try {
      await mkdir(path.join(dir, 'common'), { recursive: true });
      await writeFile(path.join(dir, 'common', 'x.yaml.hbs'), template);
      const [file] = await renderTree(dir, values);
      return file!.content;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  test('quote, flag, join and json keep hostile values inside their strings', async () => {
    const base = manifestValues(await playConfig(), FIXTURE_PKI);
    const template = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{quote environment}}',
      'data:',
      '  quoted: {{quote clusterDomain}}',
      '  flag: {{flag "cluster-domain" clusterDomain}}',
      '  joined: {{quote (join etcdServers "|")}}',
      '  list: {{json etcdServers}}',
      '',
    ].join('\n');
    for (const s of hostile.filter((h) => h !== '')) {
      const values = { ...base, environment: 'x', clusterDomain: s, etcdServers: [s, 'b'] };
      const doc = parse(await renderOne(template, values)) as { data: Record<string, unknown> };
      expect(doc.data).toEqual({
        quoted: s,
        flag: `--cluster-domain=${s}`,
        joined: `${s}|b`,
        list: [s, 'b'],
      });
    }
  });

  test('helpers refuse objects and missing values instead of printing them', async () => {
    const v = manifestValues(await playConfig(), FIXTURE_PKI);
    const head = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n';
    for (const [body, message] of [
      ['  a: {{quote ports}}\n', 'quote: expected a string, number or boolean, got an object'],
      ['  a: {{quote (join ports)}}\n', 'join: expected a list'],
      ['  a: {{json nothing}}\n', 'json: cannot encode undefined'],
      ['{{#if nothing}}\n  a: b\n{{/if}}\n', '#if: argument is undefined'],
      ['{{#with nothing}}\n  a: b\n{{/with}}\n', '#with: argument is undefined'],
      ['  a: {{flag "Bad Name" environment}}\n', 'flag: bad flag name'],
    ] as const) {
      const err = await renderOne(head + body, v).then(
        () => undefined,
        (e: unknown) => e as ValidationError,
      );
      expect(err).toBeInstanceOf(ValidationError);
      expect(err!.problems[0]!.line).toBe(6);
      expect(err!.problems[0]!.message).toContain(message);
    }
  });
});

describe('validateYaml', () => {
  test('accepts one object; refuses scalars, lists, empty files and non-Pods among static pods', () => {
    const obj = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n';
    const pod = `${obj}spec:\n  containers:\n    - name: x\n      image: x\n`;
    expect(validateYaml('secure/manifests/x.yaml', pod)).toEqual([]);
    expect(validateYaml('secure/manifests/x.yaml', obj)).toEqual(['spec.containers is empty']);
    expect(validateYaml('secure/x.yaml', obj.replace('Pod', 'Secret'))).toEqual([]);
    expect(validateYaml('secure/manifests/x.yaml', obj.replace('Pod', 'Secret'))[0]).toContain('static pods');
    expect(validateYaml('secure/x.yaml', 'just text\n')[0]).toContain('not render a Kubernetes object');
    expect(validateYaml('secure/x.yaml', '- a\n- b\n')[0]).toContain('not render a Kubernetes object');
    expect(validateYaml('secure/x.yaml', '')).not.toEqual([]);
    expect(validateYaml('secure/x.yaml', 'apiVersion: v1\nkind: [\n')[0]).toMatch(/rendered YAML line/);
  });
});

test('a UserError, exit code 2, for a bad template dir entry', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'kp-manifests-link-'));
  try {
    await mkdir(path.join(dir, 'secure'));
    await symlink('/etc/hostname', path.join(dir, 'secure', 'stolen.yaml'));
    const err = await renderTree(dir, manifestValues(await playConfig(), FIXTURE_PKI)).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as Error).message).toContain('symbolic links are not allowed');
    expect((err as Error).message).toContain('stolen.yaml');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a missing template directory is a UserError naming it', async () => {
  const missing = path.join(tmpdir(), 'kp-no-such-templates');
  const err = await renderTree(missing, manifestValues(await playConfig(), FIXTURE_PKI)).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message).toContain('kp-no-such-templates');
});
