import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnvironment } from '../../src/config/load.js';
import { toolkitRoot } from '../../src/paths.js';
import { type TfExtra, tfVars } from '../../src/terraform/vars.js';

const root = toolkitRoot();
const playEnv = readFileSync(path.join(root, 'environments', 'play.env'), 'utf8');

const extra: TfExtra = {
  amiId: 'ami-0123456789abcdef0',
  sshPublicKey:
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDd7mWk5wBA1JmcWjCZ8o9s4Bv4e0e3yRrP3O5E5q9vJ play-test\n',
  secretsBucket: 'kp-play-test-123456789012-eu-west-1-secrets',
  kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/8f0c2c5e-1111-2222-3333-444455556666',
  agentBucket: 'kp-play-test-123456789012-eu-west-1-tfstate',
  agentObjectKey: `agent/manifest-sync-${'ab'.repeat(32)}.mjs`,
  agentSha256: 'ab'.repeat(32),
};

/** The variable blocks of a .tf file: name, whether it has a default, and its type keyword. */
function declaredVariables(file: string): { name: string; hasDefault: boolean; type: string }[] {
  const text = readFileSync(file, 'utf8');
  const starts = [...text.matchAll(/^variable\s+"([a-z_][a-z0-9_]*)"\s*\{/gm)];
  return starts.map((m, i) => {
    const block = text.slice(m.index, starts[i + 1]?.index ?? text.length);
    const type = /^\s*type\s*=\s*([a-z]+)/m.exec(block)?.[1] ?? 'any';
    return { name: m[1]!, hasDefault: /^\s*default\s*=/m.test(block), type };
  });
}

describe('tfVars', () => {
  const cfg = parseEnvironment('play-test', playEnv, 'environments/play.env');
  const vars = tfVars(cfg, extra);

  test('maps the environment file to the root variables', () => {
    expect(vars.environment).toBe('play-test');
    expect(vars.region).toBe('eu-west-1');
    expect(vars.availability_zones).toEqual(['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
    expect(vars.vpc_cidr).toBe('10.80.0.0/16');
    expect(vars.secure_subnets).toEqual(['10.80.10.0/24', '10.80.11.0/24', '10.80.12.0/24']);
    expect(vars.compute_subnets).toEqual(['10.80.20.0/24', '10.80.21.0/24', '10.80.22.0/24']);
    expect(vars.elb_subnets).toEqual(['10.80.100.0/24', '10.80.101.0/24', '10.80.102.0/24']);
    expect(vars.mgmt_subnets).toEqual(['10.80.110.0/24', '10.80.111.0/24', '10.80.112.0/24']);
    expect(vars.ssh_access_list).toEqual(['0.0.0.0/0']);
    expect(vars.public_dns_zone).toBe('play.example.com');
    // PRIVATE_DNS_ZONE is unset in play.env: <env>.internal
    expect(vars.private_dns_zone).toBe('play-test.internal');
    expect(vars.kubeapi_public_name).toBe('kube-play-test.play.example.com');
    expect(vars.kubeapi_internal_name).toBe('kube.play-test.internal');
    expect(vars.kubernetes_version).toBe('v1.34.2');
    expect(vars.etcd_version).toBe('v3.6.4');
    expect(vars.master_instance_type).toBe('t3.medium');
    expect(vars.bastion_instance_type).toBe('t3.micro');
    expect(vars.worker_count).toBe(2);
    expect(vars.worker_max).toBe(4);
    expect(vars.ssh_user).toBe('ubuntu');
    expect(vars.manage_public_zone).toBe(false);
  });

  test('passes the toolkit-resolved values through, the SSH key as one line', () => {
    expect(vars.ami_id).toBe(extra.amiId);
    expect(vars.ssh_public_key).toBe(extra.sshPublicKey.trim());
    expect(vars.ssh_public_key).not.toMatch(/\n/);
    expect(vars.secrets_bucket).toBe(extra.secretsBucket);
    expect(vars.kms_key_arn).toBe(extra.kmsKeyArn);
    expect(vars.agent_object_key).toBe(extra.agentObjectKey);
    expect(vars.agent_bucket).toBe(extra.agentBucket);
    expect(vars.agent_sha256).toBe(extra.agentSha256);
  });

  test('one etcd member per master, with the fixed addresses of the topology', () => {
    expect(vars.etcd_members).toEqual([
      {
        name: 'etcd-0',
        index: 0,
        availability_zone: 'eu-west-1a',
        subnet_cidr: '10.80.10.0/24',
        ip: '10.80.10.10',
        dns_name: 'etcd-0.play-test.internal',
      },
      {
        name: 'etcd-1',
        index: 1,
        availability_zone: 'eu-west-1b',
        subnet_cidr: '10.80.11.0/24',
        ip: '10.80.11.10',
        dns_name: 'etcd-1.play-test.internal',
      },
      {
        name: 'etcd-2',
        index: 2,
        availability_zone: 'eu-west-1c',
        subnet_cidr: '10.80.12.0/24',
        ip: '10.80.12.10',
        dns_name: 'etcd-2.play-test.internal',
      },
    ]);
  });

  test('five masters over three zones: members wrap round the zones with the next address', () => {
    const five = parseEnvironment(
      'prod-a',
      playEnv.replace('MASTER_COUNT=3', 'MASTER_COUNT=5').concat('PRIVATE_DNS_ZONE=prod.internal\n'),
      'prod-a.env',
    );
    const members = tfVars(five, extra).etcd_members;
    expect(members.map((m) => [m.name, m.availability_zone, m.ip, m.dns_name])).toEqual([
      ['etcd-0', 'eu-west-1a', '10.80.10.10', 'etcd-0.prod.internal'],
      ['etcd-1', 'eu-west-1b', '10.80.11.10', 'etcd-1.prod.internal'],
      ['etcd-2', 'eu-west-1c', '10.80.12.10', 'etcd-2.prod.internal'],
      ['etcd-3', 'eu-west-1a', '10.80.10.11', 'etcd-3.prod.internal'],
      ['etcd-4', 'eu-west-1b', '10.80.11.11', 'etcd-4.prod.internal'],
    ]);
  });

  test('the result is a copy: changing it does not change the configuration', () => {
    const v = tfVars(cfg, extra);
    v.availability_zones.push('eu-west-1z');
    expect(cfg.availabilityZones).toHaveLength(3);
  });
});

describe('the contract with platform/terraform/variables.tf', () => {
  const declared = declaredVariables(path.join(root, 'platform', 'terraform', 'variables.tf'));
  const cfg = parseEnvironment('play-test', playEnv, 'environments/play.env');
  const vars = tfVars(cfg, extra) as Record<string, unknown>;

  test('variables.tf parses into the expected declarations', () => {
    // guards the regex-based parser itself: a change of layout must not make the checks vacuous
    expect(declared.length).toBeGreaterThanOrEqual(30);
    expect(declared.find((d) => d.name === 'manage_public_zone')).toEqual({
      name: 'manage_public_zone',
      hasDefault: true,
      type: 'bool',
    });
    expect(declared.find((d) => d.name === 'etcd_members')).toMatchObject({
      hasDefault: false,
      type: 'list',
    });
  });

  test('every key tfVars emits is declared', () => {
    const names = new Set(declared.map((d) => d.name));
    expect(Object.keys(vars).filter((k) => !names.has(k))).toEqual([]);
  });

  test('every variable without a default is emitted', () => {
    const missing = declared.filter((d) => !d.hasDefault && !(d.name in vars)).map((d) => d.name);
    expect(missing).toEqual([]);
  });

  test("each value has the JSON type of the variable's declared type", () => {
    const mismatched = declared
      .filter((d) => d.name in vars)
      .filter((d) => {
        const v = vars[d.name];
        switch (d.type) {
          case 'string':
            return typeof v !== 'string';
          case 'number':
            return typeof v !== 'number' || !Number.isFinite(v);
          case 'bool':
            return typeof v !== 'boolean';
          case 'list':
            return !Array.isArray(v);
          case 'object':
            return typeof v !== 'object' || v === null || Array.isArray(v);
          default:
            return true;
        }
      })
      .map((d) => `${d.name}: ${d.type}`);
    expect(mismatched).toEqual([]);
  });
});
