import { createHash, X509Certificate } from 'node:crypto';
import { chmod, cp, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import type { EnvConfig } from '../../src/config/load.js';
import { ExitCode, IntegrityError, UserError } from '../../src/errors.js';
import { listFiles } from '../../src/fsutil.js';
import { setDebug, setLogSink } from '../../src/log.js';
import {
  BOOTSTRAP_TOKEN_RE,
  checkExpiry,
  ensurePki,
  type PkiPlan,
  parseKubeconfig,
  pkiPlanFor,
} from '../../src/secrets/pki/index.js';
import { generateBootstrapToken, parseTokenAuthFile } from '../../src/secrets/pki/token.js';

const plan: PkiPlan = {
  environment: 'unit-env',
  clusterDomain: 'cluster.local',
  kubernetesServiceIp: '10.32.0.1',
  kubeapiInternalName: 'kube.unit-env.internal',
  kubeapiPublicName: 'kube-unit-env.example.com',
  etcdMembers: [0, 1, 2].map((i) => ({
    name: `etcd-${i}`,
    ip: `10.80.1${i}.10`,
    dnsName: `etcd-${i}.unit-env.internal`,
  })),
};

const KUBECONFIGS = [
  'secure/controller-manager.conf',
  'secure/scheduler.conf',
  'secure/addons.conf',
  'locked/admin.conf',
  'locked/super-admin.conf',
  'compute/bootstrap-kubelet.conf',
  'secure/bootstrap-kubelet.conf',
];

// keep the test output readable: log lines (expiry warnings...) are collected, not printed
let restoreLog: () => void;
beforeAll(() => {
  restoreLog = setLogSink(() => {});
});
afterAll(() => restoreLog());

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'pki-unit-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** sha256 of every file under root (dot-files included), by relative path. */
async function hashTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const ent of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!ent.isFile()) continue;
    const full = path.join(ent.parentPath, ent.name);
    out[path.relative(root, full)] = createHash('sha256')
      .update(await readFile(full))
      .digest('hex');
  }
  return out;
}

const read = (root: string, rel: string) => readFile(path.join(root, rel), 'utf8');
const cert = async (root: string, rel: string) => new X509Certificate(await readFile(path.join(root, rel)));

/** A PKI made once and copied for tests that only read or mutate their copy. */
let pristine: string;
beforeAll(async () => {
  pristine = await tmp();
  await ensurePki(pristine, plan);
});
async function copyOfPristine(): Promise<string> {
  const d = await tmp();
  await cp(pristine, d, { recursive: true });
  return d;
}

describe('ensurePki layout and idempotency', () => {
  test('first run creates the whole layout; a second run writes nothing and leaves every byte identical', async () => {
    const root = await tmp();
    const first = await ensurePki(root, plan);
    expect(first.kept).toEqual([]);
    const files = await listFiles(root);
    expect([...first.created].sort()).toEqual(files);
    for (const rel of [
      'common/pki/ca.crt',
      'secure/pki/ca.crt',
      'secure/pki/ca.key',
      'secure/pki/apiserver.crt',
      'secure/pki/apiserver-kubelet-client.key',
      'secure/pki/front-proxy-ca.crt',
      'secure/pki/front-proxy-client.crt',
      'secure/pki/sa.key',
      'secure/pki/sa.pub',
      'secure/pki/apiserver-etcd-client.crt',
      'secure/pki/metrics-server.crt',
      'secure/pki/metrics-server.key',
      'secure/pki/etcd/ca.crt',
      'secure/pki/etcd/members/etcd-2/server.crt',
      'secure/pki/etcd/members/etcd-2/peer.key',
      'secure/bootstrap-token.csv',
      'locked/pki/etcd/ca.key',
      'locked/pki/front-proxy-ca.key',
      'locked/ssh/unit-env',
      'common/ssh/unit-env.pub',
      ...KUBECONFIGS,
    ]) {
      expect(files).toContain(rel);
    }
    // CA keys of etcd and front-proxy are operator-only; nothing secret is in common/
    expect(files.filter((f) => f.startsWith('common/'))).toEqual([
      'common/pki/ca.crt',
      'common/ssh/unit-env.pub',
    ]);

    const before = await hashTree(root);
    const second = await ensurePki(root, plan);
    expect(second.created).toEqual([]);
    expect(second.kept).toEqual(files);
    expect(await hashTree(root)).toEqual(before);
  });

  test('a missing leaf is reissued alone, by the same CA', async () => {
    const root = await copyOfPristine();
    const before = await hashTree(root);
    await unlink(path.join(root, 'secure/pki/apiserver.crt'));
    const r = await ensurePki(root, plan);
    expect(r.created).toEqual(['secure/pki/apiserver.key', 'secure/pki/apiserver.crt']);
    const after = await hashTree(root);
    for (const [rel, digest] of Object.entries(before)) {
      if (rel.startsWith('secure/pki/apiserver.')) expect(after[rel]).not.toEqual(digest);
      else expect(after[rel]).toEqual(digest);
    }
    const ca = await cert(root, 'secure/pki/ca.crt');
    expect((await cert(root, 'secure/pki/apiserver.crt')).verify(ca.publicKey)).toBe(true);
  });

  test('a missing kubeconfig is reissued alone', async () => {
    const root = await copyOfPristine();
    await unlink(path.join(root, 'secure/scheduler.conf'));
    expect((await ensurePki(root, plan)).created).toEqual(['secure/scheduler.conf']);
  });

  test('a new etcd member gets certificates; existing members keep theirs', async () => {
    const root = await copyOfPristine();
    const bigger = {
      ...plan,
      etcdMembers: [
        ...plan.etcdMembers,
        { name: 'etcd-3', ip: '10.80.10.11', dnsName: 'etcd-3.unit-env.internal' },
      ],
    };
    const r = await ensurePki(root, bigger);
    expect(r.created.sort()).toEqual([
      'secure/pki/etcd/members/etcd-3/peer.crt',
      'secure/pki/etcd/members/etcd-3/peer.key',
      'secure/pki/etcd/members/etcd-3/server.crt',
      'secure/pki/etcd/members/etcd-3/server.key',
    ]);
  });
});

describe('ensurePki refuses inconsistent states before writing anything', () => {
  test('leaves present while their CA is missing: a new CA is not made', async () => {
    const root = await copyOfPristine();
    await unlink(path.join(root, 'secure/pki/ca.crt'));
    await unlink(path.join(root, 'secure/pki/ca.key'));
    const before = await hashTree(root);
    const err = await ensurePki(root, plan).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).exitCode).toBe(ExitCode.integrity);
    const msg = (err as Error).message;
    expect(msg).toContain(
      'secure/pki/apiserver.crt exists but its CA (secure/pki/ca.crt, secure/pki/ca.key) is missing',
    );
    expect(msg).toContain('locked/admin.conf exists');
    expect(msg).toContain('common/pki/ca.crt exists');
    expect(msg).not.toContain('etcd'); // the etcd CA is intact
    expect(await hashTree(root)).toEqual(before);
  });

  test('a leaf issued by another CA is refused', async () => {
    const root = await copyOfPristine();
    const other = await tmp();
    await ensurePki(other, plan);
    for (const f of ['secure/pki/front-proxy-client.crt', 'secure/pki/front-proxy-client.key']) {
      await writeFile(path.join(root, f), await readFile(path.join(other, f)));
    }
    await expect(ensurePki(root, plan)).rejects.toThrow(
      'secure/pki/front-proxy-client.crt was not issued by secure/pki/front-proxy-ca.crt',
    );
  });

  test('a key that does not match its certificate is refused', async () => {
    const root = await copyOfPristine();
    await writeFile(
      path.join(root, 'secure/pki/apiserver.key'),
      await readFile(path.join(root, 'secure/pki/apiserver-kubelet-client.key')),
    );
    await expect(ensurePki(root, plan)).rejects.toThrow(
      'secure/pki/apiserver.key is not the key of secure/pki/apiserver.crt',
    );
  });

  test('sa.pub without sa.key is refused (a new key would invalidate every token)', async () => {
    const root = await copyOfPristine();
    await unlink(path.join(root, 'secure/pki/sa.key'));
    await expect(ensurePki(root, plan)).rejects.toThrow(
      'secure/pki/sa.pub exists but secure/pki/sa.key is missing',
    );
  });

  test('a CA whose key is kept offline still works until something must be issued', async () => {
    const root = await copyOfPristine();
    await unlink(path.join(root, 'locked/pki/etcd/ca.key'));
    expect((await ensurePki(root, plan)).created).toEqual([]);
    await unlink(path.join(root, 'secure/pki/etcd/members/etcd-1/peer.crt'));
    await expect(ensurePki(root, plan)).rejects.toThrow(
      'secure/pki/etcd/members/etcd-1/peer.crt must be issued but the CA key locked/pki/etcd/ca.key is missing',
    );
  });

  test('a CA certificate lost after its key was written is reissued from the key; leaves still verify', async () => {
    const root = await copyOfPristine();
    const oldCa = await read(root, 'secure/pki/ca.crt');
    await unlink(path.join(root, 'secure/pki/ca.crt'));
    const r = await ensurePki(root, plan);
    expect(r.created).toContain('secure/pki/ca.crt');
    expect(r.created).not.toContain('secure/pki/apiserver.crt');
    const ca = await cert(root, 'secure/pki/ca.crt');
    expect(ca.toString()).not.toEqual(oldCa);
    expect((await cert(root, 'secure/pki/apiserver.crt')).verify(ca.publicKey)).toBe(true);
    expect(await read(root, 'common/pki/ca.crt')).toEqual(await read(root, 'secure/pki/ca.crt'));
  });
});

describe('kubeconfigs and the bootstrap token', () => {
  test('kubeconfigs embed the CA, verify TLS, are named after the environment', async () => {
    const caPem = await read(pristine, 'secure/pki/ca.crt');
    const servers: Record<string, string> = {};
    for (const rel of KUBECONFIGS) {
      const text = await read(pristine, rel);
      expect(text).not.toContain('insecure-skip-tls-verify');
      const doc = parse(text) as {
        clusters: { name: string }[];
        contexts: { name: string }[];
        'current-context': string;
      };
      expect(doc.clusters.map((c) => c.name)).toEqual(['unit-env']);
      expect(doc.contexts.map((c) => c.name)).toEqual(['unit-env']);
      expect(doc['current-context']).toBe('unit-env');
      const k = parseKubeconfig(text, rel);
      expect(k.caPem).toEqual(caPem);
      servers[rel] = k.server;
    }
    expect(servers).toEqual({
      'secure/controller-manager.conf': 'https://127.0.0.1:6443',
      'secure/scheduler.conf': 'https://127.0.0.1:6443',
      'secure/addons.conf': 'https://127.0.0.1:6443',
      'locked/admin.conf': 'https://kube-unit-env.example.com:443',
      'locked/super-admin.conf': 'https://kube-unit-env.example.com:443',
      'compute/bootstrap-kubelet.conf': 'https://kube.unit-env.internal:443',
      'secure/bootstrap-kubelet.conf': 'https://127.0.0.1:6443',
    });
    const subjects: Record<string, string> = {};
    for (const rel of KUBECONFIGS.filter((k) => !k.endsWith('bootstrap-kubelet.conf'))) {
      const k = parseKubeconfig(await read(pristine, rel), rel);
      subjects[rel] = new X509Certificate(k.clientCertPem!).subject.replace(/\n/g, ', ');
    }
    expect(subjects).toEqual({
      'secure/controller-manager.conf': 'CN=system:kube-controller-manager',
      'secure/scheduler.conf': 'CN=system:kube-scheduler',
      'secure/addons.conf': 'O=system:masters, CN=kube-platform:addon-manager',
      'locked/admin.conf': 'O=kubeadm:cluster-admins, CN=kubernetes-admin',
      'locked/super-admin.conf': 'O=system:masters, CN=kubernetes-super-admin',
    });
  });

  test('addons.conf: the add-on applier on masters, made once, never regenerated', async () => {
    const root = await tmp();
    const rel = 'secure/addons.conf';
    const first = await ensurePki(root, plan);
    expect(first.created).toContain(rel);
    const bytes = await readFile(path.join(root, rel));
    const k = parseKubeconfig(bytes.toString('utf8'), rel);
    expect(k.server).toBe('https://127.0.0.1:6443');
    expect(k.insecureSkipTlsVerify).toBe(false);
    expect(k.caPem).toBe(await read(root, 'secure/pki/ca.crt'));
    const c = new X509Certificate(k.clientCertPem!);
    expect(c.subject.split('\n')).toEqual(['O=system:masters', 'CN=kube-platform:addon-manager']);
    expect(c.verify((await cert(root, 'secure/pki/ca.crt')).publicKey)).toBe(true);
    expect(c.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // extKeyUsage clientAuth only
    // masters only: in the secure layer and in no other
    expect((await listFiles(root)).filter((f) => f.endsWith('/addons.conf'))).toEqual([rel]);

    // a second run, and a run that reissues something else, leave it byte-identical
    const second = await ensurePki(root, plan);
    expect(second.created).toEqual([]);
    expect(second.kept).toContain(rel);
    await unlink(path.join(root, 'secure/scheduler.conf'));
    expect((await ensurePki(root, plan)).created).toEqual(['secure/scheduler.conf']);
    expect((await readFile(path.join(root, rel))).equals(bytes)).toBe(true);

    // deleted: reissued alone, with a new key and certificate
    await unlink(path.join(root, rel));
    expect((await ensurePki(root, plan)).created).toEqual([rel]);
    const again = parseKubeconfig(await read(root, rel), rel);
    expect(again.clientKeyPem).not.toEqual(k.clientKeyPem);
    expect(new X509Certificate(again.clientCertPem!).subject).toBe(c.subject);
  });

  test('an insecure-skip-tls-verify or a stale CA in a kubeconfig is rewritten away, the credentials kept', async () => {
    const root = await copyOfPristine();
    const rel = 'locked/admin.conf';
    const original = await read(root, rel);
    const tampered = original
      .replace(/certificate-authority-data: \S+/, 'insecure-skip-tls-verify: true')
      .replace('https://kube-unit-env.example.com:443', 'https://old.example.com');
    await writeFile(path.join(root, rel), tampered);
    const r = await ensurePki(root, plan);
    expect(r.created).toEqual([rel]);
    expect(await read(root, rel)).toEqual(original);
  });

  test('the token has the bootstrap-token format, is generated once and is the same on both sides', async () => {
    for (let i = 0; i < 200; i++) expect(generateBootstrapToken()).toMatch(BOOTSTRAP_TOKEN_RE);
    expect(BOOTSTRAP_TOKEN_RE.test('abcdef.0123456789abcdef')).toBe(true);
    expect(BOOTSTRAP_TOKEN_RE.test('ABCDEF.0123456789abcdef')).toBe(false);
    expect(BOOTSTRAP_TOKEN_RE.test('abcdef.0123456789abcde')).toBe(false);

    const csv = await read(pristine, 'secure/bootstrap-token.csv');
    const token = parseTokenAuthFile(csv, 'csv');
    expect(token).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    const id = token.slice(0, 6);
    expect(csv).toBe(
      `${token},system:bootstrap:${id},system:bootstrap:${id},"system:bootstrappers,system:bootstrappers:kubeadm:default-node-token"\n`,
    );
    expect(csv.trim().split('\n')).toHaveLength(1);
    for (const rel of ['compute/bootstrap-kubelet.conf', 'secure/bootstrap-kubelet.conf']) {
      expect(parseKubeconfig(await read(pristine, rel), rel).token).toBe(token);
    }
  });

  test('a lost token file is recovered from the bootstrap kubeconfig, not replaced', async () => {
    const root = await copyOfPristine();
    const csv = await read(root, 'secure/bootstrap-token.csv');
    await unlink(path.join(root, 'secure/bootstrap-token.csv'));
    const r = await ensurePki(root, plan);
    expect(r.created).toEqual(['secure/bootstrap-token.csv']);
    expect(await read(root, 'secure/bootstrap-token.csv')).toBe(csv);
  });

  test('a malformed token is refused', async () => {
    const root = await copyOfPristine();
    await writeFile(path.join(root, 'secure/bootstrap-token.csv'), 'not-a-token,u,u,"g"\n');
    await expect(ensurePki(root, plan)).rejects.toThrow(
      'secure/bootstrap-token.csv: first field is not a bootstrap token',
    );
  });
});

describe('permissions, logs, expiry, plan', () => {
  test('files are 0600 and directories 0700; looser modes are tightened without rewriting', async () => {
    const root = await copyOfPristine();
    await chmod(path.join(root, 'secure/pki/apiserver.key'), 0o644);
    await chmod(path.join(root, 'secure/pki'), 0o755);
    const before = await hashTree(root);
    expect((await ensurePki(root, plan)).created).toEqual([]);
    expect(await hashTree(root)).toEqual(before);
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    expect(entries.length).toBeGreaterThan(40);
    for (const ent of entries) {
      const mode = (await stat(path.join(ent.parentPath, ent.name))).mode & 0o777;
      expect([path.relative(root, path.join(ent.parentPath, ent.name)), mode.toString(8)]).toEqual([
        path.relative(root, path.join(ent.parentPath, ent.name)),
        ent.isDirectory() ? '700' : '600',
      ]);
    }
    expect(((await stat(root)).mode & 0o777).toString(8)).toBe('700');
  });

  test('no token or key material reaches the log, even with --debug', async () => {
    const lines: string[] = [];
    const restore = setLogSink((l) => lines.push(l));
    setDebug(true);
    const root = await tmp();
    try {
      await ensurePki(root, plan);
      await unlink(path.join(root, 'secure/pki/ca.key'));
      await unlink(path.join(root, 'secure/pki/ca.crt'));
      await ensurePki(root, plan).catch((e: Error) => lines.push(e.message));
    } finally {
      setDebug(false);
      restore();
    }
    const all = lines.join('\n');
    expect(lines.length).toBeGreaterThan(5);
    const token = parseTokenAuthFile(await read(root, 'secure/bootstrap-token.csv'), 'csv');
    expect(all).not.toContain(token.slice(7));
    expect(all).not.toMatch(/PRIVATE KEY|LS0tLS1/);
  });

  test('certificates within the warning window are reported, CAs are not', async () => {
    const root = await tmp();
    const now = new Date('2030-01-01T00:00:00Z');
    const r = await ensurePki(root, { ...plan, leafDays: 10 }, { now, warnDays: 30 });
    const warned = r.expiring.map((e) => e.path);
    expect(warned).toContain('secure/pki/apiserver.crt');
    expect(warned).toContain('secure/pki/etcd/members/etcd-0/peer.crt');
    expect(warned).toContain('locked/admin.conf'); // client certificate inside the kubeconfig
    expect(warned).toContain('secure/addons.conf');
    expect(warned).not.toContain('secure/pki/ca.crt');
    expect(warned).not.toContain('secure/bootstrap-kubelet.conf'); // token only
    for (const e of r.expiring) {
      expect(e.notAfter.toISOString()).toBe('2030-01-11T00:00:00.000Z');
      expect(e.daysLeft).toBe(10);
    }
    // the same tree seen later, and with a narrower window
    const later = await checkExpiry(root, new Date('2030-01-15T00:00:00Z'), 30);
    expect(later.find((e) => e.path === 'secure/pki/apiserver.crt')?.daysLeft).toBe(-4);
    expect(await checkExpiry(root, now, 5)).toEqual([]);
    // the default one-year leaves made by the shared fixture are not warned about today
    expect(await checkExpiry(pristine, new Date(), 30)).toEqual([]);
  });

  test('checkExpiry ignores .conf files that are not kubeconfigs and names a corrupt .crt', async () => {
    const root = await copyOfPristine();
    await writeFile(path.join(root, 'secure/other.conf'), 'listen=0.0.0.0\n');
    const farFuture = new Date(Date.now() + 400 * 86_400_000);
    const all = await checkExpiry(root, farFuture, 0);
    expect(all.map((e) => e.path)).toContain('secure/scheduler.conf');
    expect(all.map((e) => e.path)).not.toContain('secure/other.conf');
    expect(all.every((e) => e.daysLeft < 0)).toBe(true);
    await writeFile(path.join(root, 'secure/pki/broken.crt'), 'garbage\n');
    const err = await checkExpiry(root, new Date(), 30).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toBe('secure/pki/broken.crt: not a PEM certificate');
  });

  test('certificates are backdated 5 minutes and leaves never outlive their CA', async () => {
    const root = await tmp();
    const now = new Date('2030-06-01T12:00:00Z');
    await ensurePki(root, { ...plan, caDays: 20, leafDays: 20 }, { now });
    const ca = await cert(root, 'secure/pki/ca.crt');
    const leaf = await cert(root, 'secure/pki/apiserver.crt');
    expect(new Date(ca.validFrom).toISOString()).toBe('2030-06-01T11:55:00.000Z');
    expect(new Date(leaf.validTo).getTime()).toBeLessThanOrEqual(new Date(ca.validTo).getTime());
    // serials: positive, at least 128 random bits, unique
    const serials = new Set<string>();
    for (const rel of (await listFiles(root)).filter((f) => f.endsWith('.crt') && !f.startsWith('common/'))) {
      const s = (await cert(root, rel)).serialNumber;
      expect(s.length).toBeGreaterThanOrEqual(33);
      expect(Number.parseInt(s.slice(0, 2), 16)).toBeLessThan(0x80);
      serials.add(s);
    }
    // 3 CAs, apiserver, apiserver-kubelet-client, front-proxy-client, apiserver-etcd-client,
    // metrics-server, and a server and a peer certificate per etcd member (3)
    expect(serials.size).toBe(14);
  });

  test('a changed plan does not churn certificates: outdated ones are reported', async () => {
    const root = await copyOfPristine();
    const moved = { ...plan, kubeapiPublicName: 'api.unit-env.example.org' };
    const r = await ensurePki(root, moved);
    expect(r.created.sort()).toEqual(['locked/admin.conf', 'locked/super-admin.conf']); // new server URL
    expect(r.outdated).toEqual([
      {
        path: 'secure/pki/apiserver.crt',
        differences: [
          'DNS SAN missing api.unit-env.example.org',
          'DNS SAN unexpected kube-unit-env.example.com',
        ],
      },
    ]);
  });

  test('a bad plan is a UserError naming the field, and nothing is created', async () => {
    const root = path.join(await tmp(), 'never');
    const bad: PkiPlan = {
      ...plan,
      kubernetesServiceIp: '10.32.0',
      leafDays: 0,
      etcdMembers: [{ name: '../x', ip: '10.0.0.1', dnsName: 'etcd.example.com' }],
    };
    const err = await ensurePki(root, bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as Error).message).toContain('pki plan: kubernetesServiceIp: "10.32.0" is not an IP address');
    expect((err as Error).message).toContain('pki plan: leafDays: 0 must be a whole number of days');
    expect((err as Error).message).toContain('pki plan: etcdMembers[0].name: "../x" is not a DNS label');
    await expect(stat(root)).rejects.toThrow();
  });

  test('pkiPlanFor takes names, the service IP and the etcd members from the environment', () => {
    const cfg = {
      name: 'prod',
      privateDnsZone: 'prod.internal',
      kubeapiPublicName: 'kube-prod.example.com',
      kubeapiInternalName: 'kube.prod.internal',
      serviceCidr: '10.96.0.0/12',
      clusterDomain: 'cluster.local',
      availabilityZones: ['eu-west-1a', 'eu-west-1b'],
      subnets: { secure: ['10.90.10.0/24', '10.90.11.0/24'], compute: [], elb: [], mgmt: [] },
      masters: { instanceType: 't3.medium', count: 3 },
    } as unknown as EnvConfig;
    expect(pkiPlanFor(cfg)).toEqual({
      environment: 'prod',
      clusterDomain: 'cluster.local',
      kubernetesServiceIp: '10.96.0.1',
      kubeapiInternalName: 'kube.prod.internal',
      kubeapiPublicName: 'kube-prod.example.com',
      etcdMembers: [
        { name: 'etcd-0', ip: '10.90.10.10', dnsName: 'etcd-0.prod.internal' },
        { name: 'etcd-1', ip: '10.90.11.10', dnsName: 'etcd-1.prod.internal' },
        { name: 'etcd-2', ip: '10.90.10.11', dnsName: 'etcd-2.prod.internal' },
      ],
    });
  });
});
