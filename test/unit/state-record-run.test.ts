import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderKubeconfig } from '../../src/secrets/pki/kubeconfig.js';
import { certificatePem, createCaCertificate, newEcKey, validityFor } from '../../src/secrets/pki/x509.js';
import { certificateRecords, recordRun } from '../../src/state/record-run.js';
import { emptyState } from '../../src/state/schema.js';

test('certificateRecords: every *.crt and kubeconfig client certificate, fingerprint as openssl prints it', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'kp-state-certs-'));
  mkdirSync(path.join(root, 'common', 'pki'), { recursive: true });
  mkdirSync(path.join(root, 'locked'));
  const key = await newEcKey();
  const now = new Date('2026-12-02T00:00:00Z');
  const ca = await createCaCertificate('kubernetes', key, validityFor(now, 3650), 'ca.key');
  const client = await createCaCertificate('admin', key, validityFor(now, 365), 'admin.key');
  const caFile = path.join(root, 'common', 'pki', 'ca.crt');
  writeFileSync(caFile, certificatePem(ca));
  writeFileSync(path.join(root, 'common', 'pki', '.ca.crt.tmp'), 'not a certificate');
  writeFileSync(
    path.join(root, 'locked', 'admin.conf'),
    renderKubeconfig({
      environment: 'prod',
      server: 'https://kube.example.com',
      caPem: certificatePem(ca),
      user: 'admin',
      auth: { clientCertPem: certificatePem(client), clientKeyPem: 'unused' },
    }),
  );
  const records = await certificateRecords(root);
  expect(records.map((r) => r.path)).toEqual(['common/pki/ca.crt', 'locked/admin.conf']);
  const openssl = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', caFile], {
    encoding: 'utf8',
  });
  expect(records[0]!.sha256).toBe(openssl.replace(/^.*=/, '').trim().replaceAll(':', '').toLowerCase());
  expect(records[0]!.subject).toBe('CN=kubernetes');
  expect(records[0]!.notAfter).toBe(ca.notAfter.toISOString());
  expect(records[1]!.subject).toBe('CN=admin');
  expect(Date.parse(records[1]!.notAfter)).toBeLessThan(Date.parse(records[0]!.notAfter));
});

test('recordRun merges generations, replaces certificates, sets desired versions, keeps observed', () => {
  const base = {
    ...emptyState('prod', '0.1.0'),
    generations: { secure: 4, compute: 9 },
    versions: {
      secure: {
        desired: { kubernetes: 'v1.33.5', etcd: 'v3.6.4' },
        observed: { kubernetes: 'v1.33.5', etcd: 'v3.6.4' },
      },
    },
  };
  const cert = {
    path: 'common/pki/ca.crt',
    sha256: 'a'.repeat(64),
    notAfter: '2036-01-01T00:00:00.000Z',
    subject: 'CN=kubernetes',
  };
  const next = recordRun(base, {
    generations: { secure: 5 },
    certificates: [cert],
    kubernetesVersion: 'v1.34.1',
    etcdVersion: 'v3.6.4',
  });
  expect(next.generations).toEqual({ secure: 5, compute: 9 });
  expect(next.pki).toEqual([cert]);
  expect(next.versions.secure).toEqual({
    desired: { kubernetes: 'v1.34.1', etcd: 'v3.6.4' },
    observed: { kubernetes: 'v1.33.5', etcd: 'v3.6.4' },
  });
  expect(next.versions.compute).toEqual({
    desired: { kubernetes: 'v1.34.1', etcd: null },
    observed: { kubernetes: null, etcd: null },
  });
  // the input is not mutated, and the same record again changes nothing (update writes nothing)
  expect(base.generations).toEqual({ secure: 4, compute: 9 });
  const again = recordRun(next, {
    generations: { secure: 5 },
    certificates: [cert],
    kubernetesVersion: 'v1.34.1',
    etcdVersion: 'v3.6.4',
  });
  expect(JSON.stringify(again)).toBe(JSON.stringify(next));
});

test('recordRun moves the last backup forward only', () => {
  const base = {
    ...emptyState('prod', '0.1.0'),
    lastBackup: { at: '2026-12-01T10:15:00.000Z', key: 'backups/etcd/b' },
  };
  const r = { generations: {}, certificates: [], kubernetesVersion: 'v1.34.1', etcdVersion: 'v3.6.4' };
  expect(recordRun(base, r).lastBackup).toEqual(base.lastBackup);
  expect(
    recordRun(base, { ...r, lastBackup: { at: '2026-12-01T10:00:00.000Z', key: 'backups/etcd/a' } })
      .lastBackup,
  ).toEqual(base.lastBackup);
  const newer = { at: '2026-12-01T10:30:00.000Z', key: 'backups/etcd/c' };
  expect(recordRun(base, { ...r, lastBackup: newer }).lastBackup).toEqual(newer);
  expect(recordRun(emptyState('prod', '0.1.0'), { ...r, lastBackup: newer }).lastBackup).toEqual(newer);
});
