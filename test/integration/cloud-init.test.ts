import { mkdtempSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { parse as parseYaml, stringify } from 'yaml';
import { type EnvConfig, parseEnvironment } from '../../src/config/load.js';
import { exec } from '../../src/exec/index.js';
import { setLogSink } from '../../src/log.js';
import { manifestValues } from '../../src/manifests/index.js';
import { terraformDir, toolkitRoot } from '../../src/paths.js';
import { ensurePki, pkiPlanFor } from '../../src/secrets/pki/index.js';
import { FIXTURE_PKI } from '../helpers/fixture-pki.js';
import {
  allowedDeprecated,
  checkCommandLine,
  checkFile,
  formatFinding,
  loadReference,
} from '../helpers/k8s-reference.js';
import { renderUserData } from '../helpers/user-data.js';

/**
 * The masters' cloud-init, as EC2 receives it: platform/terraform's `local.user_data`
 * rendered by the real terraform from the real templates and variables (user-data.tf and
 * variables.tf copied beside an output; no provider is needed), for environments/play.env.
 * Checked: the add-on applier (kp-addons script, service and timer) is installed and enabled
 * on masters only, systemd accepts its units, the user data stays within EC2's 16 KiB (gzip-compressed, as shipped), and
 * the script, run for real, waits for its files and for the API server's /readyz (through
 * kubectl and addons.conf, TLS verified) before it applies /etc/kubernetes/addons/.
 * For the cluster add-ons (platform/manifests/secure/addons/): the kubelets hand pods the
 * kube-dns Service IP and cluster domain the add-ons render, and get systemd-resolved's
 * upstream list for dnsPolicy Default (CoreDNS); kp-install puts the standard CNI plugins
 * where containerd looks for them (its CNI section run for real on a scratch tree).
 */

const root = toolkitRoot();
const work = mkdtempSync(path.join(os.tmpdir(), 'cloud-init-'));
const SCRIPT = '/usr/local/sbin/kp-addons';
const SERVICE = '/etc/systemd/system/kp-addons.service';
const TIMER = '/etc/systemd/system/kp-addons.timer';

interface CloudConfig {
  write_files: { path: string; permissions: string; content: string }[];
  /** argument lists, and the two shell lines (set -ex, the failure trap) that make it fail-stop */
  runcmd: (string[] | string)[];
}

let userData: Record<'masters' | 'workers' | 'bastion', string>;
let cfg: EnvConfig;
let master: CloudConfig;
let files: Map<string, { permissions: string; content: string }>;
let restoreLog: () => void;

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  ({ userData, cfg } = await renderUserData(work));
  master = parseYaml(userData.masters) as CloudConfig;
  files = new Map(master.write_files.map((f) => [f.path, f]));
}, 120_000);

afterAll(async () => {
  restoreLog();
  await rm(work, { recursive: true, force: true });
});

describe("masters' user data", () => {
  test('installs the kp-addons script, service and timer, and enables the timer at first boot', () => {
    expect(userData.masters.startsWith('#cloud-config\n')).toBe(true);
    expect(files.get(SCRIPT)?.permissions).toBe('0755');
    expect(files.get(SCRIPT)?.content.startsWith('#!/bin/bash\n')).toBe(true);
    expect(files.get(SERVICE)?.permissions).toBe('0644');
    expect(files.get(TIMER)?.permissions).toBe('0644');
    const enabled = master.runcmd.filter((c) => c[0] === 'systemctl' && c[1] === 'enable');
    const started = master.runcmd.filter((c) => c[0] === 'systemctl' && c[1] === 'start');
    expect(enabled.flat()).toContain('kp-addons.timer');
    expect(started.flat()).toContain('kp-addons.timer');
    // the timer starts the service; the service itself is not enabled
    expect(master.runcmd.flat()).not.toContain('kp-addons.service');
    // after kp-install, which installs kubectl (install-node.sh.tftpl), and after daemon-reload
    const at = (cmd: string[]) =>
      master.runcmd.findIndex((c) => Array.isArray(c) && c.join(' ') === cmd.join(' '));
    const enable = master.runcmd.findIndex((c) => c[1] === 'enable' && c.includes('kp-addons.timer'));
    expect(enable).toBeGreaterThan(at(['/usr/local/sbin/kp-install']));
    expect(enable).toBeGreaterThan(at(['systemctl', 'daemon-reload']));
  });

  test('the units: a oneshot after kubelet, every 60 s from boot', () => {
    const lines = (text: string) => text.split('\n').filter((l) => /^\w+=/.test(l));
    expect(lines(files.get(SERVICE)!.content)).toEqual(
      expect.arrayContaining(['After=kubelet.service', 'Type=oneshot', `ExecStart=${SCRIPT}`]),
    );
    expect(lines(files.get(TIMER)!.content)).toEqual(
      expect.arrayContaining(['OnBootSec=60', 'OnUnitActiveSec=60', 'WantedBy=timers.target']),
    );
  });

  test('the script uses /etc/kubernetes/addons.conf and /etc/kubernetes/addons/', () => {
    const script = files.get(SCRIPT)!.content;
    expect(script).toContain('k=/etc/kubernetes\n');
    expect(script).toContain('--kubeconfig=$k/addons.conf');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash array expansion, not a template
    expect(script).toContain('-R -f $k/addons/ "${extra[@]}" <<<"$secret"\n');
    // metrics-server's serving certificate and key come from the synced PKI, never a rendered file
    expect(script).toContain('ms_crt=$k/pki/metrics-server.crt\n');
    expect(script).toContain('ms_key=$k/pki/metrics-server.key\n');
    expect(script).not.toMatch(/insecure|curl -k|\$\$\{/);
  });

  test('workers and the bastion do not run it (they hold no addons.conf)', () => {
    for (const role of ['workers', 'bastion'] as const) expect(userData[role]).not.toContain('kp-addons');
  });

  test("every role's user data is within EC2's 16 KiB limit once gzip-compressed, as shipped", () => {
    // https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html: 16 KB before base64;
    // modules/launch-template ships base64gzip(user data) and checks the exact size itself
    const sizes = Object.fromEntries(
      Object.entries(userData).map(([role, ud]) => [
        role,
        { text: Buffer.byteLength(ud, 'utf8'), gzip: gzipSync(Buffer.from(ud, 'utf8')).length },
      ]),
    );
    process.stderr.write(`user data sizes (bytes; EC2 allows 16384 shipped): ${JSON.stringify(sizes)}\n`);
    for (const { gzip } of Object.values(sizes)) expect(gzip).toBeLessThanOrEqual(16_384);
  });

  test('systemd accepts the service and the timer (systemd-analyze verify)', async () => {
    const dir = path.join(work, 'units');
    await mkdir(dir);
    const script = path.join(dir, 'kp-addons');
    await writeFile(script, files.get(SCRIPT)!.content, { mode: 0o755 });
    // ExecStart must name an executable that exists here: the same script, at another path
    const service = files.get(SERVICE)!.content.replace(`ExecStart=${SCRIPT}`, `ExecStart=${script}`);
    await writeFile(path.join(dir, 'kp-addons.service'), service);
    await writeFile(path.join(dir, 'kp-addons.timer'), files.get(TIMER)!.content);
    const verify = () =>
      exec(
        'systemd-analyze',
        ['verify', '--man=no', '--generators=no', 'kp-addons.service', 'kp-addons.timer'],
        {
          cwd: dir,
          reject: false,
        },
      );
    const ok = await verify();
    expect(ok.stderr).toBe('');
    expect(ok.exitCode).toBe(0);
    // not vacuous: a misspelt key is reported
    await writeFile(
      path.join(dir, 'kp-addons.timer'),
      files.get(TIMER)!.content.replace('OnBootSec=60', 'OnBootSecs=60'),
    );
    expect((await verify()).stderr).toContain("Unknown key 'OnBootSecs' in section [Timer]");
  });
});

describe('the kp-addons script, run', () => {
  /** /etc/kubernetes of a pretend master, and the PKI whose addons.conf lands there */
  let etc: string;
  let secrets: string;
  let script: string;
  /** a directory with a recording kubectl, prepended to PATH where a test wants it */
  let fakeBin: string;
  const calls = () => path.join(work, 'kubectl-calls');

  beforeAll(async () => {
    etc = path.join(work, 'etc-kubernetes');
    secrets = path.join(work, 'secrets');
    await mkdir(etc);
    const cfg = parseEnvironment(
      'play-ci',
      await readFile(path.join(root, 'environments', 'play.env'), 'utf8'),
      'environments/play.env',
    );
    await ensurePki(secrets, pkiPlanFor(cfg));
    // The script as shipped, with its two fixed paths pointed into this test's directory.
    const shipped = files.get(SCRIPT)!.content;
    const cacheFlag = '--cache-dir=/var/cache/kp-addons';
    expect(shipped.split('k=/etc/kubernetes\n')).toHaveLength(2);
    expect(shipped.split(cacheFlag)).toHaveLength(2);
    script = path.join(work, 'kp-addons');
    await writeFile(
      script,
      shipped
        .replace('k=/etc/kubernetes\n', `k=${etc}\n`)
        .replace(cacheFlag, `--cache-dir=${work}/kubectl-cache`),
      { mode: 0o755 },
    );
    // Stands in for kubectl where no API server can: records its arguments, answers /readyz
    // with "ok" and exits with $APPLY_RC for apply.
    fakeBin = path.join(work, 'fake-bin');
    await mkdir(fakeBin);
    await writeFile(
      path.join(fakeBin, 'kubectl'),
      [
        '#!/bin/bash',
        `printf '%s\\n' "$*" >>${calls()}`,
        'case " $* " in',
        '*" get --raw=/readyz "*) echo ok ;;',
        '*" get csr -o "*) ;;',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
        '*" apply "*) exit "${APPLY_RC:-0}" ;;',
        '*) exit 99 ;;',
        'esac',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
  });

  const run = (env: Record<string, string> = {}) => exec(script, [], { cwd: work, env, reject: false });
  const withFake = () => ({ PATH: `${fakeBin}:${process.env.PATH}` });
  /** addons.conf from the PKI, pointed at `server` (the file itself targets https://127.0.0.1:6443) */
  async function installAddonsConf(server: string): Promise<void> {
    const doc = parseYaml(await readFile(path.join(secrets, 'secure', 'addons.conf'), 'utf8'));
    doc.clusters[0].cluster.server = server;
    await writeFile(path.join(etc, 'addons.conf'), stringify(doc, { lineWidth: 0 }), { mode: 0o600 });
  }
  /** An HTTPS server with the given certificate that requires a client certificate of the cluster CA. */
  async function tlsServer(certRel: string, keyRel: string, status: number) {
    const seen: { path: string; client: Record<string, unknown> }[] = [];
    const server: Server = createServer(
      {
        cert: await readFile(path.join(secrets, certRel)),
        key: await readFile(path.join(secrets, keyRel)),
        ca: await readFile(path.join(secrets, 'secure/pki/ca.crt')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        seen.push({ path: req.url ?? '', client: { ...peer.subject } });
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status === 200 ? 'ok' : '[-]etcd failed: reason withheld\nreadyz check failed\n');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  test('before manifest-sync delivered its files: logs why, exits 0, runs no kubectl', async () => {
    await rm(calls(), { force: true });
    const r = await run(withFake());
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe(`kp-addons: ${etc}/addons.conf or ${etc}/addons/ not synced yet`);
    await expect(readFile(calls(), 'utf8')).rejects.toThrow();
  });

  test('API server not ready (/readyz 503): real kubectl, TLS verified both ways, exits 0', async () => {
    await mkdir(path.join(etc, 'addons'), { recursive: true });
    const api = await tlsServer('secure/pki/apiserver.crt', 'secure/pki/apiserver.key', 503);
    try {
      await installAddonsConf(api.url);
      const r = await run();
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toMatch(/^kp-addons: API server not ready: /);
      // kubectl trusted the server through the cluster CA and authenticated as the applier
      // (kubectl asks /version before a raw request)
      expect(api.seen.map((s) => s.path).at(-1)).toBe('/readyz?timeout=5s');
      for (const s of api.seen)
        expect(s.client).toEqual({ O: 'system:masters', CN: 'kube-platform:addon-manager' });
    } finally {
      await api.close();
    }
  });

  test('a server certificate of another CA is refused (no insecure-skip-tls-verify): exits 0, nothing sent', async () => {
    // an etcd member's server certificate: valid for 127.0.0.1, but issued by the etcd CA
    const impostor = await tlsServer(
      'secure/pki/etcd/members/etcd-0/server.crt',
      'secure/pki/etcd/members/etcd-0/server.key',
      200,
    );
    try {
      await installAddonsConf(impostor.url);
      const r = await run();
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toMatch(
        /^kp-addons: API server not ready: .*x509: certificate signed by unknown authority/,
      );
      expect(impostor.seen).toEqual([]);
    } finally {
      await impostor.close();
    }
  });

  test('API server ready: server-side apply of the add-on directory with addons.conf; its exit code is the unit result', async () => {
    await installAddonsConf('https://127.0.0.1:6443');
    await rm(calls(), { force: true });
    const ok = await run(withFake());
    expect(ok.exitCode).toBe(0);
    const common = `--kubeconfig=${etc}/addons.conf --cache-dir=${work}/kubectl-cache`;
    // (no Node name from kp-kubelet, no manifest-sync state here: no label, no pruning;
    // test/integration/kp-addons.test.ts covers those)
    const lines = (await readFile(calls(), 'utf8')).split('\n');
    expect(lines[0]).toBe(`${common} get --raw=/readyz --request-timeout=5s`);
    expect(lines[1]).toMatch(new RegExp(`^${common} get csr -o jsonpath=`));
    expect(lines.slice(2)).toEqual([
      `${common} apply --server-side --field-manager=kube-platform --force-conflicts -R -f ${etc}/addons/`,
      '',
    ]);
    // a failed apply fails the unit (visible in systemctl --failed and the journal)
    const failed = await run({ ...withFake(), APPLY_RC: '1' });
    expect(failed.exitCode).toBe(1);
  });
});

describe('nodes for the cluster add-ons (kube-proxy, CoreDNS, flannel)', () => {
  const INSTALL = '/usr/local/sbin/kp-install';
  const roleFiles = (role: 'masters' | 'workers' | 'bastion') =>
    new Map((parseYaml(userData[role]) as CloudConfig).write_files.map((f) => [f.path, f.content]));

  test("every kubelet's clusterDNS and clusterDomain are the kube-dns Service IP and the Corefile's domain", () => {
    const values = manifestValues(cfg, FIXTURE_PKI);
    for (const role of ['masters', 'workers'] as const) {
      const kubelet = parseYaml(roleFiles(role).get('/var/lib/kubelet/config.yaml')!) as Record<
        string,
        unknown
      >;
      // terraform's cidrhost(service_cidr, 10) and the templates' clusterDnsIp agree
      expect([role, kubelet.clusterDNS, kubelet.clusterDomain]).toEqual([
        role,
        [values.clusterDnsIp],
        values.clusterDomain,
      ]);
      // systemd-resolved's upstream servers, not its 127.0.0.53 stub (CoreDNS would forward to itself)
      for (const file of ['/var/lib/kubelet/config.yaml', '/var/lib/kubelet/standalone.yaml']) {
        const c = parseYaml(roleFiles(role).get(file)!) as Record<string, unknown>;
        expect([role, file, c.resolvConf]).toEqual([role, file, '/run/systemd/resolve/resolv.conf']);
      }
    }
  });

  test('the kubelet configurations and the flags kp-kubelet passes are v1.34 fields and flags (test/reference/k8s-v1.34)', async () => {
    const ref = loadReference();
    const kubeletTemplate = await readFile(
      path.join(terraformDir(), 'templates', 'kubelet.sh.tftpl'),
      'utf8',
    );
    const findings: string[] = [];
    let checked = 0;
    for (const role of ['masters', 'workers'] as const) {
      const f = roleFiles(role);
      for (const file of ['/var/lib/kubelet/config.yaml', '/var/lib/kubelet/standalone.yaml']) {
        const r = checkFile(ref, `${role} ${file}`, f.get(file)!);
        expect(r.checked).toEqual(['KubeletConfiguration']);
        findings.push(...r.findings.map(formatFinding));
        checked++;
      }
      // the --flag=... words of kp-kubelet's kubelet command lines
      // (standalone and cluster mode each pass --config: one check per distinct flag)
      const flags = [
        ...new Set([...f.get('/usr/local/sbin/kp-kubelet')!.matchAll(/(--[a-z-]+)=/g)].map((m) => m[1]!)),
      ].map((flag) => `${flag}=/a/path`);
      expect(flags.length).toBeGreaterThanOrEqual(3);
      // deprecated flags explained in the template (its comments are not shipped)
      const explained = allowedDeprecated(kubeletTemplate);
      findings.push(
        ...checkCommandLine(ref, `${role} kp-kubelet`, 'kubelet', flags, explained).map(formatFinding),
      );
    }
    expect(checked).toBe(4);
    expect(findings).toEqual([]);
  });

  test('kp-install parses (bash -n) and installs the CNI plugins on masters and workers only', async () => {
    for (const role of ['masters', 'workers', 'bastion'] as const) {
      const script = roleFiles(role).get(INSTALL)!;
      const file = path.join(work, `kp-install-${role}`);
      await writeFile(file, script, { mode: 0o755 });
      const syntax = await exec('bash', ['-n', file], { cwd: work, reject: false });
      expect([role, syntax.exitCode, syntax.stderr]).toEqual([role, 0, '']);
      const installs = /apt-get install [^\n]*containernetworking-plugins/.test(script);
      expect([role, installs]).toEqual([role, role !== 'bastion']);
    }
    expect(roleFiles('workers').get(INSTALL)).toBe(roleFiles('masters').get(INSTALL));
  });

  describe("kp-install's CNI section, run on a scratch tree", () => {
    let tree: string;
    let section: string;

    beforeAll(() => {
      // The shipped lines from the plugin links to the bin_dir check, their fixed paths moved
      // into `tree` (the bin_dir looked for in config.toml stays /opt/cni/bin).
      const lines = roleFiles('workers').get(INSTALL)!.split('\n');
      const start = lines.indexOf('install -d -m 0755 /opt/cni/bin /etc/cni/net.d');
      const check = lines.findIndex((l) => l.includes("containerd's CNI bin_dir is not /opt/cni/bin"));
      expect(start).toBeGreaterThan(0);
      expect(check).toBeGreaterThan(start);
      expect(lines[check + 2]).toBe('fi');
      tree = path.join(work, 'cni-root');
      section = lines
        .slice(start, check + 3)
        // the check and its message name the bin_dir containerd is configured with, not a file
        .map((l) =>
          l.includes('grep -Eq') || l.includes('bin_dir is not')
            ? l
            : l.replaceAll('/opt/cni/bin', `${tree}/opt/cni/bin`),
        )
        .join('\n')
        .replaceAll('/usr/lib/cni', `${tree}/usr/lib/cni`)
        .replaceAll('/etc/cni/net.d', `${tree}/etc/cni/net.d`)
        .replaceAll('/etc/containerd/config.toml', `${tree}/etc/containerd/config.toml`);
      expect(section).not.toMatch(/ \/(usr|etc)\//);
    });

    /** A fresh tree: Ubuntu's plugins (containernetworking-plugins) and containerd's config. */
    async function prepare(plugins: string[], containerdCni: string): Promise<void> {
      await rm(tree, { recursive: true, force: true });
      await mkdir(path.join(tree, 'usr/lib/cni'), { recursive: true });
      await mkdir(path.join(tree, 'etc/containerd'), { recursive: true });
      for (const p of plugins)
        await writeFile(path.join(tree, 'usr/lib/cni', p), '#!/bin/sh\n', { mode: 0o755 });
      await writeFile(path.join(tree, 'etc/containerd/config.toml'), containerdCni);
    }
    const run = async () => {
      const file = path.join(work, 'cni-section.sh');
      await writeFile(file, `set -euo pipefail\n${section}\n`, { mode: 0o755 });
      return exec('bash', [file], { cwd: work, reject: false });
    };
    const UBUNTU = ['bandwidth', 'bridge', 'host-local', 'loopback', 'portmap', 'tuning'];
    // `containerd config default` of containerd 1.7 and of 2.1+ (bin_dirs, a list)
    const V17 =
      '[plugins."io.containerd.grpc.v1.cri".cni]\n      bin_dir = "/opt/cni/bin"\n      conf_dir = "/etc/cni/net.d"\n';
    const V21 =
      "[plugins.'io.containerd.cri.v1.runtime'.cni]\n      bin_dirs = ['/opt/cni/bin']\n      conf_dir = '/etc/cni/net.d'\n";

    test('links every Ubuntu plugin into /opt/cni/bin, a real directory, and creates /etc/cni/net.d', async () => {
      for (const config of [V17, V21]) {
        await prepare(UBUNTU, config);
        const r = await run();
        expect([r.exitCode, r.stderr]).toEqual([0, '']);
        const bin = path.join(tree, 'opt/cni/bin');
        expect((await lstat(bin)).isDirectory()).toBe(true);
        expect((await readdir(bin)).sort()).toEqual(UBUNTU);
        for (const p of UBUNTU)
          expect(await readlink(path.join(bin, p))).toBe(path.join(tree, 'usr/lib/cni', p));
        expect((await lstat(path.join(tree, 'etc/cni/net.d'))).isDirectory()).toBe(true);
      }
    });

    test("flannel's own plugin (written by its init container) is never replaced by a package's", async () => {
      await prepare([...UBUNTU, 'flannel'], V17);
      await mkdir(path.join(tree, 'opt/cni/bin'), { recursive: true });
      await writeFile(path.join(tree, 'opt/cni/bin/flannel'), 'flannel-io/cni-plugin\n', { mode: 0o755 });
      expect((await run()).exitCode).toBe(0);
      expect(await readFile(path.join(tree, 'opt/cni/bin/flannel'), 'utf8')).toBe('flannel-io/cni-plugin\n');
      // and running again (links already there) is fine
      expect((await run()).exitCode).toBe(0);
    });

    test('refuses a node without a plugin flannel chains, or a containerd looking elsewhere', async () => {
      await prepare(
        UBUNTU.filter((p) => p !== 'portmap'),
        V17,
      );
      const missing = await run();
      expect([missing.exitCode, missing.stderr]).toEqual([
        1,
        `kp-install: CNI plugin portmap missing from ${tree}/opt/cni/bin`,
      ]);
      await prepare(UBUNTU, V17.replace('"/opt/cni/bin"', '"/usr/lib/cni"'));
      const elsewhere = await run();
      expect([elsewhere.exitCode, elsewhere.stderr]).toEqual([
        1,
        `kp-install: containerd's CNI bin_dir is not /opt/cni/bin (see ${tree}/etc/containerd/config.toml)`,
      ]);
    });
  });
});

/**
 * The user data of every role, checked by the real cloud-init (Debian's, 22.4) and shellcheck:
 * the exact text terraform renders (`local.user_data`; the launch template ships it
 * gzip-compressed, and test/nodes/etcd-quorum.test.ts runs the masters' as gunzipped from the
 * launch template).
 */
describe("every role's user data, by cloud-init itself", () => {
  const ROLES = ['masters', 'workers', 'bastion'] as const;
  // Debian's cloud-init runs on the system Python (it may differ from a python3 on PATH)
  const PY = '/usr/bin/python3';
  const roleFile = async (role: string, text: string) => {
    const file = path.join(work, `user-data-${role}.yaml`);
    await writeFile(file, text);
    return file;
  };

  test('passes `cloud-init schema --config-file`, and a wrong type is reported (not vacuous)', async () => {
    for (const role of ROLES) {
      const r = await exec('cloud-init', ['schema', '--config-file', await roleFile(role, userData[role])], {
        cwd: work,
        reject: false,
      });
      expect([role, r.exitCode, r.stdout.trim()]).toEqual([
        role,
        0,
        `Valid cloud-config: ${path.join(work, `user-data-${role}.yaml`)}`,
      ]);
    }
    const broken = userData.bastion.replace(/permissions: "0755"/, 'permissions: 0755');
    expect(broken).not.toBe(userData.bastion);
    const r = await exec('cloud-init', ['schema', '--config-file', await roleFile('broken', broken)], {
      cwd: work,
      reject: false,
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/write_files\.\d+\.permissions: \d+ is not of type 'string'/);
  });

  test("its write_files, written into a scratch root by cloud-init's write_files module: contents, modes, owners", async () => {
    for (const role of ROLES) {
      const scratch = path.join(work, `root-${role}`);
      const script = [
        'import sys, yaml',
        'from cloudinit.config import cc_write_files',
        'cfg = yaml.safe_load(open(sys.argv[1]))',
        'files = [dict(f, path=sys.argv[2] + f["path"]) for f in cfg["write_files"]]',
        'cc_write_files.write_files("write_files", files, "root:root")',
      ].join('\n');
      await exec(PY, ['-c', script, await roleFile(role, userData[role]), scratch], { cwd: work });
      const cfgDoc = parseYaml(userData[role]) as CloudConfig;
      expect(cfgDoc.write_files.length).toBeGreaterThan(3);
      for (const f of cfgDoc.write_files) {
        const written = path.join(scratch, f.path);
        const st = await stat(written);
        expect([role, f.path, (st.mode & 0o7777).toString(8).padStart(4, '0'), st.uid, st.gid]).toEqual([
          role,
          f.path,
          f.permissions,
          0,
          0,
        ]);
        expect(await readFile(written, 'utf8')).toBe(f.content);
      }
    }
  });

  test('every shell script in it passes bash -n (sh -n) and shellcheck, and so does the runcmd script cloud-init makes', async () => {
    const checked: string[] = [];
    for (const role of ROLES) {
      const cfgDoc = parseYaml(userData[role]) as CloudConfig;
      const scripts = cfgDoc.write_files
        .filter((f) => /^#!\/bin\/(ba)?sh\n/.test(f.content))
        .map((f) => ({ name: f.path, content: f.content }));
      scripts.push({ name: 'runcmd', content: await shellify(role) });
      for (const s of scripts) {
        const file = path.join(work, `check-${role}-${path.basename(s.name)}`);
        await writeFile(file, s.content, { mode: 0o755 });
        const shell = s.content.startsWith('#!/bin/bash') ? 'bash' : 'sh';
        const syntax = await exec(shell, ['-n', file], { cwd: work, reject: false });
        expect([role, s.name, syntax.exitCode, syntax.stderr]).toEqual([role, s.name, 0, '']);
        const lint = await exec('shellcheck', ['--format=gcc', file], { cwd: work, reject: false });
        expect([role, s.name, lint.exitCode, lint.stdout]).toEqual([role, s.name, 0, '']);
        expect([role, s.name, earlyExitPipes(s.content)]).toEqual([role, s.name, []]);
        checked.push(`${role}:${s.name}`);
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining([
        'masters:/usr/local/sbin/kp-etcd-claim',
        'masters:/usr/local/sbin/kp-install',
        'masters:/usr/local/sbin/kp-addons',
        'workers:/usr/local/sbin/kp-kubelet',
        'bastion:/usr/local/sbin/kp-fetch-agent',
        'bastion:runcmd',
      ]),
    );
    // not vacuous: shellcheck reports an unquoted expansion
    const bad = path.join(work, 'check-bad.sh');
    await writeFile(bad, '#!/bin/bash\nrm -rf $1/tmp\n');
    expect((await exec('shellcheck', ['--format=gcc', bad], { cwd: work, reject: false })).stdout).toContain(
      'SC2086',
    );
    // not vacuous: the pipe check finds what failed the claim script on a rerun
    expect(
      earlyExitPipes('#!/bin/bash\nset -euo pipefail\nip rule show | grep -q "from $ip" || ip rule add\n'),
    ).toEqual(['ip rule show | grep -q "from $ip" || ip rule add']);
    expect(earlyExitPipes('#!/bin/bash\nip rule show | grep -q x\n')).toEqual([]);
  });

  /**
   * Lines of a `pipefail` script that pipe into `grep -q`: grep exits at its first match, the
   * writer can then die of SIGPIPE, and pipefail fails the pipeline though the text matched
   * (seen as "RTNETLINK answers: File exists" when kp-etcd-claim re-added its ip rule).
   * Comment lines are skipped. Returns the offending lines, trimmed.
   */
  function earlyExitPipes(script: string): string[] {
    if (!/^\s*set -[a-z]*o pipefail/m.test(script)) return [];
    return script
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => !l.startsWith('#') && /\|\s*grep\s+-[a-zA-Z]*q/.test(l));
  }

  /** The runcmd script exactly as cloud-init's runcmd module writes it (cloudinit.util.shellify). */
  async function shellify(role: (typeof ROLES)[number]): Promise<string> {
    const script = [
      'import sys, yaml',
      'from cloudinit import util',
      'sys.stdout.write(util.shellify(yaml.safe_load(open(sys.argv[1]))["runcmd"]))',
    ].join('\n');
    const r = await exec(PY, ['-c', script, await roleFile(role, userData[role])], { cwd: work });
    return `${r.stdout}\n`;
  }

  describe('a failed boot step stops the boot and says so', () => {
    /** Runs the role's runcmd script with kp-install exiting `installRc` and recording stand-ins for systemctl and install. */
    async function boot(role: (typeof ROLES)[number], installRc: number) {
      const dir = path.join(work, `boot-${role}-${installRc}`);
      await mkdir(path.join(dir, 'bin'), { recursive: true });
      const calls = path.join(dir, 'calls');
      const record = `#!/bin/sh\necho "$(basename "$0") $*" >>${calls}\n`;
      for (const tool of ['systemctl', 'install'])
        await writeFile(path.join(dir, 'bin', tool), record, { mode: 0o755 });
      await writeFile(path.join(dir, 'kp-install'), `${record}exit ${installRc}\n`, { mode: 0o755 });
      const shipped = await shellify(role);
      expect(shipped.split("'/usr/local/sbin/kp-install'")).toHaveLength(2);
      const script = path.join(dir, 'runcmd');
      await writeFile(script, shipped.replace("'/usr/local/sbin/kp-install'", `'${dir}/kp-install'`), {
        mode: 0o755,
      });
      // as cloud-init runs it: the script itself (#!/bin/sh), its exit code the module's result
      const r = await exec(script, [], {
        cwd: dir,
        env: { PATH: `${dir}/bin:${process.env.PATH}` },
        reject: false,
      });
      const ran = await readFile(calls, 'utf8').then(
        (t) =>
          t
            .trim()
            .split('\n')
            .map((l) => l.trimEnd()),
        () => [] as string[],
      );
      return { ...r, ran };
    }

    test('kp-install failing: the script exits with its code, no later step runs, the console names the failure', async () => {
      for (const role of ROLES) {
        const r = await boot(role, 3);
        expect([role, r.exitCode]).toEqual([role, 3]);
        expect([role, r.ran]).toEqual([role, ['kp-install']]);
        expect(r.stderr).toContain(`+ ${path.join(work, `boot-${role}-3`)}/kp-install`);
        expect(r.stderr).toMatch(
          /^kube-platform: boot step FAILED \(exit 3\), the command traced above; the boot steps after it were not run$/m,
        );
      }
    });

    test('every step succeeding: all run, in order, and the script exits 0 without a failure line', async () => {
      for (const role of ROLES) {
        const r = await boot(role, 0);
        expect([role, r.exitCode]).toEqual([role, 0]);
        const cfgDoc = parseYaml(userData[role]) as CloudConfig;
        const steps = cfgDoc.runcmd.filter((c) => Array.isArray(c));
        expect(r.ran).toHaveLength(steps.length);
        expect(r.ran.at(-1)).toBe(`systemctl ${(steps.at(-1) as string[]).slice(1).join(' ')}`);
        expect(r.stderr).not.toMatch(/^kube-platform: boot step FAILED/m);
      }
    });
  });
});
