import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnvironment } from '../../src/config/load.js';
import { bootstrapNames, etcdMembers, kubernetesServiceIp } from '../../src/config/topology.js';
import { ValidationError } from '../../src/errors.js';

const root = path.resolve(import.meta.dirname, '..', '..', '..');
const playText = readFileSync(path.join(root, 'environments', 'play.env'), 'utf8');

function problemsOf(text: string, name = 'play-test'): { line?: number; key?: string; message: string }[] {
  try {
    parseEnvironment(name, text, 'environments/x.env');
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    expect((e as ValidationError).exitCode).toBe(2);
    return (e as ValidationError).problems;
  }
  throw new Error('expected a ValidationError');
}

function lineOf(text: string, key: string): number {
  return text.split('\n').findIndex((l) => l.startsWith(`${key}=`)) + 1;
}

test('the shipped environments are valid', () => {
  for (const f of ['play.env', 'example-prod.env']) {
    const text = readFileSync(path.join(root, 'environments', f), 'utf8');
    const cfg = parseEnvironment(f === 'play.env' ? 'play-test' : 'example-prod', text, f);
    expect(cfg.availabilityZones).toHaveLength(3);
    expect(cfg.subnets.secure).toHaveLength(3);
  }
});

test('values are typed and defaults applied', () => {
  const cfg = parseEnvironment('play-alice', playText, 'play.env');
  expect(cfg).toMatchObject({
    name: 'play-alice',
    region: 'eu-west-1',
    awsProfile: 'play',
    masters: { count: 3, instanceType: 't3.medium' },
    workers: { count: 2, max: 4 },
    privateDnsZone: 'play-alice.internal',
    kubeapiPublicName: 'kube-play-alice.play.example.com',
    kubernetesVersion: 'v1.34.2',
    sshUser: 'ubuntu',
  });
  expect(cfg.nodeAmi).toBeUndefined();
});

test('an unknown key, a malformed CIDR, a bad count and a missing key are all reported with lines', () => {
  const text = `${playText
    .replace('VPC_CIDR=10.80.0.0/16', 'VPC_CIDR=10.80.0.1/16')
    .replace(/^PUBLIC_DNS_ZONE=.*\n/m, '')
    .replace('MASTER_COUNT=3', 'MASTER_COUNT=two')}WORKER_COUNTS=3\n`;
  const problems = problemsOf(text);
  const byKey = Object.fromEntries(problems.map((p) => [p.key, p]));
  expect(byKey.VPC_CIDR).toMatchObject({
    line: lineOf(text, 'VPC_CIDR'),
    message: expect.stringMatching(/CIDR/),
  });
  expect(byKey.MASTER_COUNT).toMatchObject({
    line: lineOf(text, 'MASTER_COUNT'),
    message: expect.stringMatching(/whole number/),
  });
  expect(byKey.WORKER_COUNTS).toMatchObject({ line: lineOf(text, 'WORKER_COUNTS'), message: 'unknown key' });
  expect(byKey.PUBLIC_DNS_ZONE?.message).toMatch(/required key is missing/);
});

test('hostile values cannot reach templates: YAML/HCL metacharacters are rejected', () => {
  const text = playText.replace('PUBLIC_DNS_ZONE=play.example.com', 'PUBLIC_DNS_ZONE=a.com"\n  evil: true');
  const problems = problemsOf(text);
  expect(problems.some((p) => p.key === 'PUBLIC_DNS_ZONE' || /KEY=value/.test(p.message))).toBe(true);
  const hcl = problemsOf(
    playText.replace('MASTER_INSTANCE_TYPE=t3.medium', 'MASTER_INSTANCE_TYPE=t3.medium"}'),
  );
  expect(hcl.map((p) => p.key)).toContain('MASTER_INSTANCE_TYPE');
});

test('cross-field checks: subnet count per zone, containment, overlaps, even master count', () => {
  const text = playText
    .replace(
      'SECURE_SUBNETS=10.80.10.0/24,10.80.11.0/24,10.80.12.0/24',
      'SECURE_SUBNETS=10.80.10.0/24,10.80.11.0/24',
    )
    .replace('COMPUTE_SUBNETS=10.80.20.0/24,', 'COMPUTE_SUBNETS=10.81.20.0/24,')
    .replace('ELB_SUBNETS=10.80.100.0/24', 'ELB_SUBNETS=10.80.110.0/24');
  const problems = problemsOf(text);
  expect(problems.find((p) => p.key === 'SECURE_SUBNETS')?.message).toMatch(
    /2 subnets for 3 availability zones/,
  );
  expect(problems.find((p) => p.key === 'COMPUTE_SUBNETS')?.message).toMatch(/outside VPC_CIDR/);
  expect(problems.find((p) => p.key === 'MGMT_SUBNETS')?.message).toMatch(
    /overlaps 10.80.110.0\/24 \(ELB_SUBNETS\)/,
  );
  expect(problemsOf(playText.replace('MASTER_COUNT=3', 'MASTER_COUNT=2'))[0]?.message).toMatch(/odd/);
});

test('duplicate keys and non KEY=value lines are errors', () => {
  const problems = problemsOf(`${playText}AWS_REGION=eu-west-2\nthis is not a setting\n`);
  expect(problems.find((p) => p.key === 'AWS_REGION')?.message).toMatch(/set twice/);
  expect(problems.find((p) => p.message === 'not a KEY=value line')?.line).toBe(
    playText.split('\n').length + 1,
  );
});

test('environment names must fit bucket names', () => {
  expect(problemsOf(playText, 'Play_Alice')[0]?.message).toMatch(/environment name/);
  expect(problemsOf(playText, 'a-very-long-environment-name-x')[0]?.message).toMatch(/environment name/);
});

test('topology: etcd members spread over zones with fixed addresses; names fit S3', () => {
  const cfg = parseEnvironment(
    'play-alice',
    playText.replace('MASTER_COUNT=3', 'MASTER_COUNT=5'),
    'play.env',
  );
  const members = etcdMembers(cfg);
  expect(members.map((m) => [m.name, m.availabilityZone, m.ip])).toEqual([
    ['etcd-0', 'eu-west-1a', '10.80.10.10'],
    ['etcd-1', 'eu-west-1b', '10.80.11.10'],
    ['etcd-2', 'eu-west-1c', '10.80.12.10'],
    ['etcd-3', 'eu-west-1a', '10.80.10.11'],
    ['etcd-4', 'eu-west-1b', '10.80.11.11'],
  ]);
  expect(members[0]!.dnsName).toBe('etcd-0.play-alice.internal');
  expect(kubernetesServiceIp(cfg)).toBe('10.32.0.1');
  const longest = bootstrapNames({ name: 'x'.repeat(24), region: 'ap-southeast-2' }, '123456789012');
  expect(longest.stateBucket.length).toBeLessThanOrEqual(63);
  expect(longest.secretsBucket.length).toBeLessThanOrEqual(63);
});
