import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { exec } from '../../src/exec/index.js';
import { setLogSink } from '../../src/log.js';
import { renderUserData } from '../helpers/user-data.js';

/**
 * The masters' kp-addons script as terraform renders it (issue 15 parts), run for real with a
 * recording kubectl: it labels its own Node control-plane, approves exactly the kubelet
 * serving-certificate requests that are a node's own (real CSRs made with openssl at test
 * time), and applies the add-ons as an ApplySet with --prune only when /etc/kubernetes/addons
 * is exactly what manifest-sync last applied. test/integration/kubectl-applyset.test.ts runs
 * the same apply with the real kubectl against an API server double and shows what it prunes.
 */

const work = mkdtempSync(path.join(os.tmpdir(), 'kp-addons-'));
const etc = path.join(work, 'etc-kubernetes');
const addons = path.join(etc, 'addons');
const stateFile = path.join(work, 'manifest-sync-secure.json');
const nodeNameFile = path.join(work, 'node-name');
const fakeBin = path.join(work, 'bin');
const calls = path.join(work, 'kubectl-calls');
const csrDir = path.join(work, 'csrs');
let script: string;
let restoreLog: () => void;

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  const { userData } = await renderUserData(work);
  const master = parseYaml(userData.masters) as { write_files: { path: string; content: string }[] };
  const shipped = master.write_files.find((f) => f.path === '/usr/local/sbin/kp-addons')!.content;
  for (const fixed of [
    'k=/etc/kubernetes\n',
    'state=/var/lib/kube-platform/manifest-sync-secure.json\n',
    'node_name=/run/kp-kubelet/node-name\n',
    '--cache-dir=/var/cache/kp-addons',
  ])
    expect([fixed, shipped.split(fixed).length]).toEqual([fixed, 2]);
  script = path.join(work, 'kp-addons');
  await writeFile(
    script,
    shipped
      .replace('k=/etc/kubernetes\n', `k=${etc}\n`)
      .replace('state=/var/lib/kube-platform/manifest-sync-secure.json\n', `state=${stateFile}\n`)
      .replace('node_name=/run/kp-kubelet/node-name\n', `node_name=${nodeNameFile}\n`)
      .replace('--cache-dir=/var/cache/kp-addons', `--cache-dir=${work}/kubectl-cache`),
    { mode: 0o755 },
  );
  await mkdir(addons, { recursive: true });
  await writeFile(path.join(etc, 'addons.conf'), 'stand-in kubeconfig\n');
  await mkdir(fakeBin);
  await mkdir(csrDir);
  // kubectl where no API server can run: records its arguments (and KUBECTL_APPLYSET for an
  // apply); answers /readyz, the CSR list ($CSR_DIR/list), a CSR's request ($CSR_DIR/<name>)
  // and a Node's addresses ($CSR_DIR/node-<name>).
  await writeFile(
    path.join(fakeBin, 'kubectl'),
    `#!/bin/bash
args=("$@")
obj=
for i in "\${!args[@]}"; do
  case "\${args[$i]}" in csr | node) obj=\${args[$((i + 1))]:-}; break ;; esac
done
case " $* " in
*" apply "*) printf 'KUBECTL_APPLYSET=%s %s\\n' "\${KUBECTL_APPLYSET:-}" "$*" >>${calls}
  case " $* " in *" -f - "*) cat >${calls}-stdin ;; esac ;;
*) printf '%s\\n' "$*" >>${calls} ;;
esac
case " $* " in
*" get --raw=/readyz "*) echo ok ;;
*" label node "*) exit "\${LABEL_RC:-0}" ;;
*" get csr -o "*) cat ${csrDir}/list 2>/dev/null || true ;;
*" get csr "*) base64 -w0 <${csrDir}/"$obj" ;;
*" get node "*) cat ${csrDir}/node-"$obj" ;;
*" certificate approve "*) ;;
*" get addonsets.kube-platform.io kube-platform-addons "*) ;;
*" apply "*) ;;
*) exit 99 ;;
esac
`,
    { mode: 0o755 },
  );
});

afterAll(async () => {
  restoreLog();
  await rm(work, { recursive: true, force: true });
});

const run = () =>
  exec(script, [], { cwd: work, env: { PATH: `${fakeBin}:${process.env.PATH}` }, reject: false });
const callsMade = async () =>
  (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
const common = `--kubeconfig=${etc}/addons.conf --cache-dir=${work}/kubectl-cache`;

const pki = path.join(etc, 'pki');
/** metrics-server's serving certificate and key as manifest-sync puts them (stand-in PEM text) */
const MS_CRT = 'stand-in certificate\n';
const MS_KEY = 'stand-in key\n';
async function reset(): Promise<void> {
  await rm(calls, { force: true });
  await rm(`${calls}-stdin`, { force: true });
  await mkdir(pki, { recursive: true });
  await writeFile(path.join(pki, 'metrics-server.crt'), MS_CRT);
  await writeFile(path.join(pki, 'metrics-server.key'), MS_KEY, { mode: 0o600 });
  await rm(nodeNameFile, { force: true });
  await rm(stateFile, { force: true });
  await rm(path.join(csrDir, 'list'), { force: true });
  await rm(addons, { recursive: true, force: true });
  await mkdir(addons);
}

describe('control-plane label', () => {
  test("labels the Node kp-kubelet named (kubeadm's mark-control-plane)", async () => {
    await reset();
    await writeFile(nodeNameFile, 'ip-10-80-10-12.eu-west-1.compute.internal\n');
    const r = await run();
    expect(r.exitCode).toBe(0);
    expect(await callsMade()).toContain(
      `${common} label node ip-10-80-10-12.eu-west-1.compute.internal node-role.kubernetes.io/control-plane= --overwrite`,
    );
  });

  test('a Node not registered yet: says so and still applies', async () => {
    await reset();
    await writeFile(nodeNameFile, 'ip-10-80-10-12.eu-west-1.compute.internal\n');
    const r = await exec(script, [], {
      cwd: work,
      env: { PATH: `${fakeBin}:${process.env.PATH}`, LABEL_RC: '1' },
      reject: false,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain(
      'kp-addons: could not label Node ip-10-80-10-12.eu-west-1.compute.internal control-plane (not registered yet?)',
    );
    expect((await callsMade()).at(-1)).toMatch(/ apply --server-side /);
  });
});

describe('kubelet serving certificates', () => {
  /** A CSR as kubelet makes it (CN system:node:<name>, O system:nodes), with these SANs. */
  async function csr(file: string, cn: string, org: string, sans: string): Promise<void> {
    const key = path.join(csrDir, `${file}.key`);
    await exec('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], {
      cwd: work,
    });
    await exec(
      'openssl',
      [
        'req',
        '-new',
        '-key',
        key,
        '-subj',
        `/O=${org}/CN=${cn}`,
        '-addext',
        `subjectAltName=${sans}`,
        '-out',
        path.join(csrDir, file),
      ],
      { cwd: work },
    );
    await rm(key);
  }

  test("approves exactly the pending requests that are a node's own names and addresses", async () => {
    await reset();
    const node = 'ip-10-80-20-7.eu-west-1.compute.internal';
    await writeFile(
      path.join(csrDir, `node-${node}`),
      `10.80.20.7\n${node}\n${node}\n`, // InternalIP, InternalDNS, Hostname (as the CCM sets them)
    );
    await csr('csr-good', `system:node:${node}`, 'system:nodes', `DNS:${node},IP:10.80.20.7`);
    await csr('csr-foreign-ip', `system:node:${node}`, 'system:nodes', `DNS:${node},IP:10.80.10.12`);
    await csr('csr-other-name', `system:node:${node}`, 'system:nodes', `DNS:kube.example.org`);
    await csr('csr-bad-subject', `system:node:${node}`, 'system:masters', `DNS:${node}`);
    await writeFile(
      path.join(csrDir, 'list'),
      [
        `csr-good system:node:${node} `,
        `csr-foreign-ip system:node:${node} `,
        `csr-other-name system:node:${node} `,
        `csr-bad-subject system:node:${node} `,
        'csr-not-a-node system:serviceaccount:default:x ',
        `csr-done system:node:${node} [{"type":"Approved","status":"True"}]`,
        '',
      ].join('\n'),
    );
    const r = await run();
    expect([r.exitCode, r.exitCode === 0 ? '' : r.stderr]).toEqual([0, '']);
    const approved = (await callsMade()).filter((c) => c.includes(' certificate approve '));
    expect(approved).toEqual([`${common} certificate approve csr-good`]);
    expect(r.stderr.split('\n').filter((l) => l.includes('csr-'))).toEqual([
      `kp-addons: approved the serving certificate request csr-good of ${node}`,
      `kp-addons: not approving csr-foreign-ip of ${node}: 10.80.10.12 is not one of the Node's addresses`,
      `kp-addons: not approving csr-other-name of ${node}: kube.example.org is not one of the Node's addresses`,
      `kp-addons: not approving csr-bad-subject of ${node}: subject CN=system:node:${node},O=system:masters`,
      'kp-addons: not approving csr-not-a-node: requested by system:serviceaccount:default:x, not a node',
    ]);
  });
});

describe('applying as an ApplySet, pruning only when the directory is what manifest-sync applied', () => {
  const files = {
    'coredns/deployment.yaml': 'kind: Deployment\n',
    'metrics-server/service.yaml': 'kind: Service\n',
    'metrics-server/deployment.yaml': 'kind: Deployment\n',
  };
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  async function inStep(): Promise<void> {
    const written: Record<string, string> = {};
    for (const [rel, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(addons, rel)), { recursive: true });
      await writeFile(path.join(addons, rel), text);
      written[path.join(addons, rel)] = sha(text);
    }
    // a file of the secure layer outside addons/ is not the script's concern
    written[path.join(etc, 'manifests', 'etcd.yaml')] = sha('etcd');
    await writeFile(
      stateFile,
      JSON.stringify({ generation: 7, indexDigest: 'x', written, fileErrors: [], appliedAt: 'now' }),
    );
  }
  const pruneApply = `KUBECTL_APPLYSET=true ${common} apply --server-side --field-manager=kube-platform --force-conflicts --prune --applyset=addonsets.kube-platform.io/kube-platform-addons -R -f ${addons}/ -f -`;
  const plainApply = `KUBECTL_APPLYSET=true ${common} apply --server-side --field-manager=kube-platform --force-conflicts -R -f ${addons}/ -f -`;

  test('in step: --prune --applyset=addonsets.kube-platform.io/kube-platform-addons, with KUBECTL_APPLYSET=true', async () => {
    await reset();
    await inStep();
    const r = await run();
    expect([r.exitCode, r.stderr]).toEqual([0, '']);
    expect((await callsMade()).at(-1)).toBe(pruneApply);
  });

  test.each([
    ['no manifest-sync state yet', async () => rm(stateFile)],
    [
      'a file still arriving (listed, not there)',
      async () => rm(path.join(addons, 'coredns/deployment.yaml')),
    ],
    [
      'a file the last pass did not write',
      async () => writeFile(path.join(addons, 'stray.yaml'), 'kind: Pod\n'),
    ],
    [
      'a file changed since',
      async () => writeFile(path.join(addons, 'metrics-server/service.yaml'), 'changed\n'),
    ],
    [
      'the last pass refused a file',
      async () => {
        const s = JSON.parse(await readFile(stateFile, 'utf8'));
        s.fileErrors = [{ path: 'addons/x.yaml', error: 'invalid' }];
        await writeFile(stateFile, JSON.stringify(s));
      },
    ],
  ])('not in step (%s): applies without pruning and says why', async (_what, spoil) => {
    await reset();
    await inStep();
    await spoil();
    const r = await run();
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe(
      `kp-addons: not pruning: ${etc}/addons/ is not (yet) what manifest-sync last applied (${stateFile})`,
    );
    expect((await callsMade()).at(-1)).toBe(plainApply);
  });

  test("with the metrics-server add-on, its serving certificate's Secret is applied in the same ApplySet, from /etc/kubernetes/pki", async () => {
    await reset();
    await inStep();
    expect((await run()).exitCode).toBe(0);
    expect((await callsMade()).at(-1)).toBe(pruneApply);
    const secret = parseYaml(await readFile(`${calls}-stdin`, 'utf8')) as {
      kind: string;
      type: string;
      metadata: { name: string; namespace: string; labels: Record<string, string> };
      data: Record<string, string>;
    };
    expect([secret.kind, secret.type, secret.metadata.namespace, secret.metadata.name]).toEqual([
      'Secret',
      'kubernetes.io/tls',
      'kube-system',
      'metrics-server-serving-cert',
    ]);
    expect(secret.metadata.labels['app.kubernetes.io/managed-by']).toBe('kube-platform');
    expect(
      Object.fromEntries(
        Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
      ),
    ).toEqual({
      'tls.crt': MS_CRT,
      'tls.key': MS_KEY,
    });
  });

  test('the serving certificate not synced yet: no Secret and no prune (it would delete the Secret), and says why', async () => {
    await reset();
    await inStep();
    await rm(path.join(pki, 'metrics-server.key'));
    const r = await run();
    expect(r.exitCode).toBe(0);
    const why = `metrics-server's serving certificate ${pki}/metrics-server.crt or its key is not synced yet`;
    expect(r.stderr).toBe(
      `kp-addons: not applying the Secret kube-system/metrics-server-serving-cert: ${why}\nkp-addons: not pruning: ${why}`,
    );
    expect((await callsMade()).at(-1)).toBe(plainApply.replace(/ -f -$/, ''));
  });

  test('without the metrics-server add-on no Secret is made (the ApplySet prunes an earlier one)', async () => {
    await reset();
    await inStep();
    const s = JSON.parse(await readFile(stateFile, 'utf8'));
    for (const f of ['service.yaml', 'deployment.yaml']) {
      delete s.written[path.join(addons, 'metrics-server', f)];
      await rm(path.join(addons, 'metrics-server', f)); // manifest-sync leaves the empty directory
    }
    await writeFile(stateFile, JSON.stringify(s));
    const r = await run();
    expect([r.exitCode, r.stderr]).toEqual([0, '']);
    expect((await callsMade()).at(-1)).toBe(pruneApply.replace(/ -f -$/, ''));
  });

  test('dot-files (manifest-sync temp files) do not count', async () => {
    await reset();
    await inStep();
    await writeFile(path.join(addons, '.coredns.tmp-123'), 'partial');
    expect((await run()).exitCode).toBe(0);
    expect((await callsMade()).at(-1)).toBe(pruneApply);
  });
});
