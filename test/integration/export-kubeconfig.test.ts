/**
 * `export-kubeconfig` (issue 11 item 20): the operator's own short-lived client certificate
 * works with the real kubectl against a local HTTPS server that checks client certificates
 * against the cluster CA (as a Kubernetes API server does), names the operator and the
 * cluster-admins group, and stops working when it says it expires.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { parse } from 'yaml';
import {
  certificatePem,
  createCaCertificate,
  issueLeaf,
  newEcKey,
  privateKeyPem,
  validityFor,
} from '../../src/secrets/pki/x509.js';
import { cli, workspace } from '../helpers/cli.js';
import { useMoto } from '../helpers/moto.js';

const moto = useMoto();

function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('kubectl', args, { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('the certificate names the operator, is accepted by a server checking the cluster CA, and expires', async () => {
  const env = 'play-kubecfg';
  const ws = workspace({ [env]: '' });
  // the cluster CA, as run generates it, in the working copy (secure layer)
  const caKey = await newEcKey();
  const ca = await createCaCertificate('kubernetes', caKey, validityFor(new Date(), 365), 'test CA');
  const pki = path.join(ws.dir, 'secrets', env, 'secure', 'pki');
  mkdirSync(pki, { recursive: true, mode: 0o700 });
  writeFileSync(path.join(pki, 'ca.crt'), certificatePem(ca));
  writeFileSync(path.join(pki, 'ca.key'), privateKeyPem(caKey), { mode: 0o600 });
  // a server on loopback that, like kube-apiserver, requires a client certificate of that CA
  const serverKey = await newEcKey();
  const serving = await issueLeaf(
    { cert: ca, key: caKey, where: 'test CA' },
    serverKey,
    { cn: 'kube-apiserver', o: [], usages: ['serverAuth'], dns: [], ips: ['127.0.0.1'] },
    validityFor(new Date(), 1),
  );
  const server = https.createServer(
    {
      key: privateKeyPem(serverKey),
      cert: certificatePem(serving),
      ca: certificatePem(ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const subject = peer.subject as unknown as Record<string, string | string[]>;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ user: subject.CN, groups: ([] as string[]).concat(subject.O ?? []) }));
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const kubeconfig = path.join(ws.home, '.kube', 'config');
    mkdirSync(path.dirname(kubeconfig), { recursive: true });
    writeFileSync(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: "https://other.example:443"}\ncontexts:\n- name: other\n  context: {cluster: other, user: other}\ncurrent-context: other\nusers:\n- name: other\n  user: {token: not-a-secret}\n',
    );
    const vars = {
      ...moto.env,
      PLATFORM_WORKDIR: ws.dir,
      HOME: ws.home,
      AWS_PROFILE: undefined,
      KUBECONFIG: undefined,
    };
    const lifetimeS = 15;
    const r = await cli(
      [
        'export-kubeconfig',
        '-e',
        env,
        '--server',
        `https://127.0.0.1:${port}`,
        '--lifetime',
        `${lifetimeS}s`,
      ],
      vars,
    );
    expect([r.code, r.code ? r.stderr : '']).toEqual([0, '']);
    const issued = JSON.parse(r.stdout) as { user: string; groups: string[]; notAfter: string };
    // moto's identity is arn:aws:sts::123456789012:user/moto
    expect(issued.user).toBe('moto');
    expect(issued.groups).toContain('kubeadm:cluster-admins');
    const notAfter = Date.parse(issued.notAfter);
    expect(Math.abs(notAfter - (Date.now() + lifetimeS * 1000))).toBeLessThan(10_000);
    // merged: the other context is still there, the new one is the environment's
    const merged = parse(readFileSync(kubeconfig, 'utf8')) as { contexts: { name: string }[] };
    expect(merged.contexts.map((c) => c.name).sort()).toEqual(['other', env]);

    const ok = await kubectl(['--kubeconfig', kubeconfig, '--context', env, 'get', '--raw', '/whoami']);
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(JSON.parse(ok.stdout)).toEqual({
      user: 'moto',
      groups: ['kubeadm:cluster-admins', 'kube-platform:operators'],
    });

    await new Promise((res) => setTimeout(res, Math.max(0, notAfter - Date.now()) + 1500));
    const expired = await kubectl(['--kubeconfig', kubeconfig, '--context', env, 'get', '--raw', '/whoami']);
    expect(expired.code).not.toBe(0);
  } finally {
    server.close();
  }
});

test('a bad --lifetime is refused before anything is read', async () => {
  const ws = workspace({ 'play-kubecfg2': '' });
  const vars = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
  for (const bad of ['0s', '8d', 'soon']) {
    const { result, requests } = await moto.record(() =>
      cli(['export-kubeconfig', '-e', 'play-kubecfg2', '--lifetime', bad], vars),
    );
    expect(result.code).toBe(2);
    expect(requests).toEqual([]);
  }
});
