import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bootstrap } from '../../src/aws/bootstrap.js';
import { AwsClients } from '../../src/aws/clients.js';
import { bootstrapNames } from '../../src/config/topology.js';
import { cli, workspace } from '../helpers/cli.js';
import { useMoto } from '../helpers/moto.js';

const moto = useMoto();
const ENV = 'sec-test';

function put(root: string, rel: string, text: string, mode = 0o600): void {
  const f = path.join(root, rel);
  mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
  writeFileSync(f, text, { mode });
}

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: ${ENV}
  cluster: { server: https://kube-${ENV}.play.example.com, certificate-authority-data: Q0E= }
users:
- name: admin
  user: { client-certificate-data: Y2VydA==, client-key-data: a2V5 }
contexts:
- name: admin@${ENV}
  context: { cluster: ${ENV}, user: admin }
current-context: admin@${ENV}
`;

test('upload-secrets --dry-run touches nothing; upload then fetch round-trips with modes; local edits are protected', async () => {
  const aws = new AwsClients({ region: 'eu-west-1', endpoint: moto.endpoint });
  const names = bootstrapNames({ name: ENV, region: 'eu-west-1' }, (await aws.identity()).account);
  await bootstrap(aws, names, ENV);
  aws.destroy();

  const a = workspace({ [ENV]: '' });
  const secretsA = path.join(a.dir, 'secrets', ENV);
  put(secretsA, 'common/pki/ca.crt', 'CA CERT', 0o644);
  // a static pod the node agent accepts (upload-secrets refuses one it would refuse)
  put(
    secretsA,
    'secure/manifests/etcd.yaml',
    'apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\nspec:\n  containers:\n    - name: etcd\n      image: registry.k8s.io/etcd:3.6.4-0\n',
  );
  put(secretsA, 'locked/admin.conf', kubeconfig);
  put(secretsA, `locked/ssh/${ENV}`, 'PRIVATE KEY MATERIAL');
  const envA = { ...moto.env, PLATFORM_WORKDIR: a.dir, HOME: a.home, AWS_PROFILE: undefined };

  const dry = await cli(['upload-secrets', '-e', ENV, '--dry-run'], envA);
  expect(dry.code).toBe(0);
  expect(dry.stdout).toContain('+ secure/manifests/etcd.yaml');
  const listed = () =>
    execFileSync(
      'aws',
      ['--endpoint-url', moto.endpoint, 's3', 'ls', '--recursive', `s3://${names.secretsBucket}`],
      {
        env: { ...process.env, ...moto.env },
        encoding: 'utf8',
      },
    );
  expect(listed()).toBe('');

  const up = await cli(['upload-secrets', '-e', ENV], envA);
  expect(up.code).toBe(0);
  expect(up.stderr).toMatch(/locked: published generation 1/);
  expect(listed()).toContain('index/locked');
  const again = await cli(['upload-secrets', '-e', ENV], envA);
  expect(again.stderr).toMatch(/0 PutObject/);

  const b = workspace({ [ENV]: '' });
  const secretsB = path.join(b.dir, 'secrets', ENV);
  const envB = { ...moto.env, PLATFORM_WORKDIR: b.dir, HOME: b.home, AWS_PROFILE: undefined };
  const fetched = await cli(['fetch-secrets', '-e', ENV], envB);
  expect(fetched.code).toBe(0);
  for (const rel of [
    'common/pki/ca.crt',
    'secure/manifests/etcd.yaml',
    'locked/admin.conf',
    `locked/ssh/${ENV}`,
  ]) {
    expect(readFileSync(path.join(secretsB, rel))).toEqual(readFileSync(path.join(secretsA, rel)));
  }
  expect(statSync(path.join(secretsB, `locked/ssh/${ENV}`)).mode & 0o777).toBe(0o600);
  expect(statSync(path.join(secretsB, 'common/pki/ca.crt')).mode & 0o777).toBe(0o644);
  expect(statSync(path.join(secretsB, 'locked')).mode & 0o777).toBe(0o700);
  // the shared admin.conf stays in locked/ (break-glass): ~/.kube/config is not written
  expect(existsSync(path.join(b.home, '.kube', 'config'))).toBe(false);
  expect(fetched.stderr).toContain(`export-kubeconfig -e ${ENV}`);
  const glass = await cli(['fetch-secrets', '-e', ENV, '--break-glass'], envB);
  expect(glass.code).toBe(0);
  expect(glass.stderr).toMatch(/warning: context \S+-break-glass \(shared cluster-admin, break-glass\)/);
  const merged = readFileSync(path.join(b.home, '.kube', 'config'), 'utf8');
  expect(merged).toContain(`current-context: ${ENV}-break-glass`);
  expect(statSync(path.join(b.home, '.kube', 'config')).mode & 0o777).toBe(0o600);
  const partial = await cli(['fetch-secrets', '-e', ENV, '--layer', 'common', '--break-glass'], envB);
  expect([partial.code, partial.stderr]).toEqual([2, expect.stringContaining('add --layer locked')]);

  // a local edit is not overwritten without --force, and is named
  put(secretsB, 'common/pki/ca.crt', 'EDITED', 0o644);
  const refused = await cli(['fetch-secrets', '-e', ENV], envB);
  expect(refused.code).toBe(3);
  expect(refused.stderr).toContain('common/pki/ca.crt');
  expect(readFileSync(path.join(secretsB, 'common/pki/ca.crt'), 'utf8')).toBe('EDITED');
  const forced = await cli(['fetch-secrets', '-e', ENV, '--force'], envB);
  expect(forced.code).toBe(0);
  expect(readFileSync(path.join(secretsB, 'common/pki/ca.crt'), 'utf8')).toBe('CA CERT');
  // the secret value never reaches any output, also with --debug
  const debug = await cli(['--debug', 'fetch-secrets', '-e', ENV, '--force'], envB);
  expect(`${debug.stdout}${debug.stderr}`).not.toContain('PRIVATE KEY MATERIAL');
});
