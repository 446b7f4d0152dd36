import { mkdtempSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, createServer } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { parseEnvironment } from '../../src/config/load.js';
import { exec } from '../../src/exec/index.js';
import { setLogSink } from '../../src/log.js';
import { manifestValues, renderTree } from '../../src/manifests/index.js';
import { manifestsTemplateDir, toolkitRoot } from '../../src/paths.js';
import { ensurePki, type PkiPlan, parseKubeconfig } from '../../src/secrets/pki/index.js';

/** PEM armour, built so that no key header stands literally in the source (secret scanners). */
const PEM_BEGIN = `${'-'.repeat(5)}BEGIN `;

/**
 * The generated PKI checked by independent tools: OpenSSL (chain verification, purposes,
 * extensions, key/certificate pairing) and OpenSSH (the SSH key pair).
 */

const plan: PkiPlan = {
  environment: 'it-env',
  clusterDomain: 'cluster.example',
  kubernetesServiceIp: '10.32.0.1',
  kubeapiInternalName: 'kube.it-env.internal',
  kubeapiPublicName: 'kube-it-env.example.com',
  etcdMembers: [0, 1, 2].map((i) => ({
    name: `etcd-${i}`,
    ip: `10.80.1${i}.10`,
    dnsName: `etcd-${i}.it-env.internal`,
  })),
};

// made at collection time: the test.each tables below name files in them
const root = mkdtempSync(path.join(os.tmpdir(), 'pki-it-'));
const work = mkdtempSync(path.join(os.tmpdir(), 'pki-it-work-'));
let restoreLog: () => void;

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  await ensurePki(root, plan);
  // the client certificates of the kubeconfigs, extracted for openssl
  for (const name of ['controller-manager', 'scheduler', 'addons', 'admin', 'super-admin']) {
    const rel = name.endsWith('admin') ? `locked/${name}.conf` : `secure/${name}.conf`;
    const k = parseKubeconfig(await readFile(path.join(root, rel), 'utf8'), rel);
    await writeFile(path.join(work, `${name}.crt`), k.clientCertPem!, { mode: 0o600 });
    await writeFile(path.join(work, `${name}.key`), k.clientKeyPem!, { mode: 0o600 });
  }
});
afterAll(async () => {
  restoreLog();
  await rm(root, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

const at = (rel: string) => path.join(root, rel);
const openssl = (args: string[]) => exec('openssl', args, { cwd: root, reject: false });
const text = async (file: string) => (await openssl(['x509', '-noout', '-text', '-in', file])).stdout;

const CA = {
  kubernetes: at('secure/pki/ca.crt'),
  etcd: at('secure/pki/etcd/ca.crt'),
  frontProxy: at('secure/pki/front-proxy-ca.crt'),
};

type Leaf = { cert: string; key: string; ca: keyof typeof CA; purpose: 'server' | 'client' | 'both' };
const members = plan.etcdMembers.flatMap((m) =>
  (['server', 'peer'] as const).map(
    (kind): Leaf => ({
      cert: at(`secure/pki/etcd/members/${m.name}/${kind}.crt`),
      key: at(`secure/pki/etcd/members/${m.name}/${kind}.key`),
      ca: 'etcd',
      purpose: 'both',
    }),
  ),
);
const w = (name: string) => ({ cert: path.join(work, `${name}.crt`), key: path.join(work, `${name}.key`) });
const LEAVES: Record<string, Leaf> = {
  apiserver: {
    cert: at('secure/pki/apiserver.crt'),
    key: at('secure/pki/apiserver.key'),
    ca: 'kubernetes',
    purpose: 'server',
  },
  'apiserver-kubelet-client': {
    cert: at('secure/pki/apiserver-kubelet-client.crt'),
    key: at('secure/pki/apiserver-kubelet-client.key'),
    ca: 'kubernetes',
    purpose: 'client',
  },
  'front-proxy-client': {
    cert: at('secure/pki/front-proxy-client.crt'),
    key: at('secure/pki/front-proxy-client.key'),
    ca: 'frontProxy',
    purpose: 'client',
  },
  'apiserver-etcd-client': {
    cert: at('secure/pki/apiserver-etcd-client.crt'),
    key: at('secure/pki/apiserver-etcd-client.key'),
    ca: 'etcd',
    purpose: 'client',
  },
  'metrics-server': {
    cert: at('secure/pki/metrics-server.crt'),
    key: at('secure/pki/metrics-server.key'),
    ca: 'kubernetes',
    purpose: 'server',
  },
  'controller-manager.conf': { ...w('controller-manager'), ca: 'kubernetes', purpose: 'client' },
  'scheduler.conf': { ...w('scheduler'), ca: 'kubernetes', purpose: 'client' },
  'addons.conf': { ...w('addons'), ca: 'kubernetes', purpose: 'client' },
  'admin.conf': { ...w('admin'), ca: 'kubernetes', purpose: 'client' },
  'super-admin.conf': { ...w('super-admin'), ca: 'kubernetes', purpose: 'client' },
  ...Object.fromEntries(members.map((m) => [path.relative(root, m.cert), m])),
};

describe('openssl verify', () => {
  test.each(Object.entries(LEAVES))('%s verifies against its own CA and no other', async (_name, leaf) => {
    const ok = await openssl(['verify', '-CAfile', CA[leaf.ca], leaf.cert]);
    expect(ok.stdout.trim()).toBe(`${leaf.cert}: OK`);
    expect(ok.exitCode).toBe(0);
    for (const [other, file] of Object.entries(CA)) {
      if (other === leaf.ca) continue;
      const bad = await openssl(['verify', '-CAfile', file, leaf.cert]);
      expect(bad.exitCode).not.toBe(0);
      expect(bad.stderr).toMatch(/unable to get local issuer certificate/);
    }
  });

  test.each(Object.entries(LEAVES))('%s is usable only for its TLS role', async (_name, leaf) => {
    const asServer = await openssl(['verify', '-purpose', 'sslserver', '-CAfile', CA[leaf.ca], leaf.cert]);
    const asClient = await openssl(['verify', '-purpose', 'sslclient', '-CAfile', CA[leaf.ca], leaf.cert]);
    expect([asServer.exitCode === 0, asClient.exitCode === 0]).toEqual(
      leaf.purpose === 'server' ? [true, false] : leaf.purpose === 'client' ? [false, true] : [true, true],
    );
  });

  test.each(Object.entries(LEAVES))(
    '%s: the private key is the key of the certificate',
    async (_name, leaf) => {
      const fromKey = await openssl(['pkey', '-in', leaf.key, '-pubout']);
      const fromCert = await openssl(['x509', '-in', leaf.cert, '-noout', '-pubkey']);
      expect(fromKey.exitCode).toBe(0);
      expect(fromKey.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----/);
      expect(fromKey.stdout).toBe(fromCert.stdout);
      // and it is not the key of another leaf
      const other = leaf === LEAVES.apiserver ? LEAVES['admin.conf']! : LEAVES.apiserver!;
      expect((await openssl(['x509', '-in', other.cert, '-noout', '-pubkey'])).stdout).not.toBe(
        fromKey.stdout,
      );
    },
  );

  test.each(Object.entries(CA))('the %s CA key is the key of its certificate', async (id, cert) => {
    const key = {
      kubernetes: 'secure/pki/ca.key',
      etcd: 'locked/pki/etcd/ca.key',
      frontProxy: 'locked/pki/front-proxy-ca.key',
    }[id]!;
    expect((await openssl(['pkey', '-in', at(key), '-pubout'])).stdout).toBe(
      (await openssl(['x509', '-in', cert, '-noout', '-pubkey'])).stdout,
    );
  });
});

describe('openssl x509 -text', () => {
  test('CAs: CA:TRUE critical, certificate signing, subject names as kubeadm', async () => {
    const cns: string[] = [];
    for (const file of Object.values(CA)) {
      const t = await text(file);
      expect(t).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE/);
      expect(t).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Certificate Sign, CRL Sign\n/);
      expect(t).toContain('X509v3 Subject Key Identifier');
      expect(t).not.toContain('Extended Key Usage');
      cns.push(/Subject: (.*)\n/.exec(t)![1]!);
    }
    expect(cns).toEqual(['CN = kubernetes', 'CN = etcd-ca', 'CN = front-proxy-ca']);
  });

  test('apiserver: serverAuth only and every SAN', async () => {
    const t = await text(LEAVES.apiserver!.cert);
    expect(t).toMatch(/Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    expect(t).toMatch(/Basic Constraints: critical\n\s+CA:FALSE/);
    expect(t).toMatch(/Key Usage: critical\n\s+Digital Signature\n/);
    const sans = /Subject Alternative Name: \n\s+(.*)\n/.exec(t)![1]!.split(', ');
    expect(sans.sort()).toEqual(
      [
        'DNS:kubernetes',
        'DNS:kubernetes.default',
        'DNS:kubernetes.default.svc',
        'DNS:kubernetes.default.svc.cluster.example',
        'DNS:kube.it-env.internal',
        'DNS:kube-it-env.example.com',
        'DNS:localhost',
        'IP Address:10.32.0.1',
        'IP Address:127.0.0.1',
      ].sort(),
    );
    // issued by the Kubernetes CA: authority key id = the CA's subject key id
    const aki = /Authority Key Identifier: \n\s+(?:keyid:)?([0-9A-F:]+)/.exec(t)![1];
    const ski = /Subject Key Identifier: \n\s+([0-9A-F:]+)/.exec(await text(CA.kubernetes))![1];
    expect(aki).toBe(ski);
  });

  test('clients: clientAuth only, subjects as kubeadm ≥ 1.29', async () => {
    const subjects: Record<string, string> = {};
    for (const [name, leaf] of Object.entries(LEAVES)) {
      if (leaf.purpose !== 'client') continue;
      const t = await text(leaf.cert);
      expect(t).toMatch(/Extended Key Usage: \n\s+TLS Web Client Authentication\n/);
      expect(t).not.toContain('Subject Alternative Name');
      subjects[name] = /Subject: (.*)\n/.exec(t)![1]!;
    }
    expect(subjects).toEqual({
      'apiserver-kubelet-client': 'O = kubeadm:cluster-admins, CN = kube-apiserver-kubelet-client',
      'front-proxy-client': 'CN = front-proxy-client',
      'apiserver-etcd-client': 'CN = kube-apiserver-etcd-client',
      'controller-manager.conf': 'CN = system:kube-controller-manager',
      'scheduler.conf': 'CN = system:kube-scheduler',
      'addons.conf': 'O = system:masters, CN = kube-platform:addon-manager',
      'admin.conf': 'O = kubeadm:cluster-admins, CN = kubernetes-admin',
      'super-admin.conf': 'O = system:masters, CN = kubernetes-super-admin',
    });
  });

  test('etcd members: server and client auth, the member name, address and DNS name', async () => {
    const t0 = await text(at('secure/pki/etcd/members/etcd-1/server.crt'));
    expect(t0).toMatch(
      /Extended Key Usage: \n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/,
    );
    expect(t0).toContain('Subject: CN = etcd-1\n');
    expect(/Subject Alternative Name: \n\s+(.*)\n/.exec(t0)![1]).toBe(
      'DNS:etcd-1.it-env.internal, DNS:etcd-1, DNS:localhost, IP Address:10.80.11.10, IP Address:127.0.0.1',
    );
    const p0 = await text(at('secure/pki/etcd/members/etcd-1/peer.crt'));
    expect(p0).toMatch(
      /Extended Key Usage: \n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/,
    );
    expect(/Subject Alternative Name: \n\s+(.*)\n/.exec(p0)![1]).toBe(
      'DNS:etcd-1.it-env.internal, DNS:etcd-1, IP Address:10.80.11.10',
    );
  });

  test('service-account key pair: RSA 2048, PKCS#8 and SPKI PEM, matching', async () => {
    const keyPem = await readFile(at('secure/pki/sa.key'), 'utf8');
    expect(keyPem).toMatch(new RegExp(`^${PEM_BEGIN}PRIVATE KEY-----\n`));
    const details = await openssl(['pkey', '-in', at('secure/pki/sa.key'), '-noout', '-text']);
    expect(details.stdout).toMatch(/Private-Key: \(2048 bit, 2 primes\)/);
    const pub = await openssl(['pkey', '-in', at('secure/pki/sa.key'), '-pubout']);
    expect(pub.stdout).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    // (exec() strips the final newline of a child's output; the file keeps it)
    expect(await readFile(at('secure/pki/sa.pub'), 'utf8')).toBe(`${pub.stdout}\n`);
  });

  test('leaf keys are PKCS#8 P-256', async () => {
    expect(await readFile(LEAVES.apiserver!.key, 'utf8')).toMatch(
      new RegExp(`^${PEM_BEGIN}PRIVATE KEY-----\n`),
    );
    const details = await openssl(['pkey', '-in', LEAVES.apiserver!.key, '-noout', '-text']);
    expect(details.stdout).toContain('NIST CURVE: P-256');
  });
});

describe('kubeconfigs and SSH', () => {
  test.each([
    'secure/controller-manager.conf',
    'secure/scheduler.conf',
    'secure/addons.conf',
    'locked/admin.conf',
    'locked/super-admin.conf',
    'compute/bootstrap-kubelet.conf',
    'secure/bootstrap-kubelet.conf',
  ])('%s: certificate-authority-data decodes to the Kubernetes CA certificate', async (rel) => {
    const k = parseKubeconfig(await readFile(at(rel), 'utf8'), rel);
    const decoded = path.join(work, 'decoded-ca.crt');
    await writeFile(decoded, k.caPem!);
    const a = await openssl(['x509', '-in', decoded, '-outform', 'DER']);
    const b = await openssl(['x509', '-in', CA.kubernetes, '-outform', 'DER']);
    expect(a.exitCode).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(k.caPem).toBe(await readFile(CA.kubernetes, 'utf8'));
  });

  test('secure/addons.conf: verifies TLS against the cluster CA, targets the local API server, is never regenerated', async () => {
    const rel = 'secure/addons.conf';
    const before = await readFile(at(rel));
    const doc = parseYaml(before.toString('utf8')) as {
      clusters: { cluster: Record<string, unknown> }[];
    };
    expect(Object.keys(doc.clusters[0]!.cluster).sort()).toEqual(['certificate-authority-data', 'server']);
    expect(doc.clusters[0]!.cluster.server).toBe('https://127.0.0.1:6443');
    expect(
      (await openssl(['verify', '-purpose', 'sslclient', '-CAfile', CA.kubernetes, w('addons').cert])).stdout,
    ).toBe(`${w('addons').cert}: OK`);
    await ensurePki(root, plan);
    expect((await readFile(at(rel))).equals(before)).toBe(true);
  });

  test('ssh-keygen -y of the private key equals the published public key', async () => {
    const pub = await readFile(at('common/ssh/it-env.pub'), 'utf8');
    const derived = await exec('ssh-keygen', ['-y', '-f', at('locked/ssh/it-env')], { cwd: root });
    expect(derived.stdout.trim()).toBe(pub.trim());
    expect(pub).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+ it-env\n$/);
    const fp = await exec('ssh-keygen', ['-l', '-f', at('locked/ssh/it-env')], { cwd: root });
    expect(fp.stdout).toMatch(/^256 SHA256:\S+ it-env \(ED25519\)/);
    // no passphrase: -y above would have failed without a terminal to ask one
    expect(await readFile(at('locked/ssh/it-env'), 'utf8')).toMatch(
      new RegExp(`^${PEM_BEGIN}OPENSSH PRIVATE KEY-----\n`),
    );
  });
});

describe('metrics-server serving certificate and the APIService caBundle', () => {
  test('serverAuth only, names of its Service (as the aggregator connects), no IP', async () => {
    const t = await text(LEAVES['metrics-server']!.cert);
    expect(t).toContain('Subject: CN = metrics-server\n');
    expect(t).toMatch(/Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    expect(/Subject Alternative Name: \n\s+(.*)\n/.exec(t)![1]).toBe(
      'DNS:metrics-server.kube-system.svc, DNS:metrics-server.kube-system.svc.cluster.example',
    );
  });

  /** The rendered APIService of an environment whose PKI is this one (its Kubernetes CA). */
  async function renderedApiService(): Promise<{ caBundle?: string; insecureSkipTLSVerify?: boolean }> {
    const cfg = parseEnvironment(
      'play-pki',
      await readFile(path.join(toolkitRoot(), 'environments', 'play.env'), 'utf8'),
      'environments/play.env',
    );
    const files = await renderTree(
      manifestsTemplateDir(),
      manifestValues(cfg, { kubernetesCaPem: await readFile(CA.kubernetes, 'utf8') }),
    );
    const f = files.find((x) => x.path === 'secure/addons/metrics-server/api-service.yaml')!;
    return (parseYaml(f.content) as { spec: { caBundle?: string; insecureSkipTLSVerify?: boolean } }).spec;
  }

  test('openssl verify: the rendered caBundle verifies the serving certificate, and only it among other CAs', async () => {
    const spec = await renderedApiService();
    expect(spec.insecureSkipTLSVerify).toBeUndefined();
    const bundle = path.join(work, 'ca-bundle.crt');
    await writeFile(bundle, Buffer.from(spec.caBundle!, 'base64'));
    const cert = LEAVES['metrics-server']!.cert;
    const ok = await openssl(['verify', '-purpose', 'sslserver', '-CAfile', bundle, cert]);
    expect([ok.exitCode, ok.stdout.trim()]).toEqual([0, `${cert}: OK`]);
    // the front-proxy client is not issued by it: the bundle is the Kubernetes CA, nothing wider
    const other = await openssl(['verify', '-CAfile', bundle, LEAVES['front-proxy-client']!.cert]);
    expect(other.exitCode).not.toBe(0);
  });

  /**
   * A TLS handshake as the API server's aggregator makes it: trust = the APIService's caBundle,
   * server name `<service>.<namespace>.svc`; the server presents metrics-server's certificate.
   * @returns the client's verdict: 'ok' or the error code
   */
  async function handshake(servername: string, ca: Buffer): Promise<string> {
    const server = createServer({
      cert: await readFile(LEAVES['metrics-server']!.cert),
      key: await readFile(LEAVES['metrics-server']!.key),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      return await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port, servername, ca });
        s.once('secureConnect', () => {
          s.end();
          resolve('ok');
        });
        s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  test('HTTPS: a client trusting only the rendered caBundle accepts metrics-server for metrics-server.kube-system.svc', async () => {
    const ca = Buffer.from((await renderedApiService()).caBundle!, 'base64');
    expect(await handshake('metrics-server.kube-system.svc', ca)).toBe('ok');
    // and the check can fail: another name, or another CA
    expect(await handshake('kubernetes.default.svc', ca)).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(await handshake('metrics-server.kube-system.svc', await readFile(CA.frontProxy))).toBe(
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    );
  });
});
