import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import {
  DescribeInstancesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeNetworkInterfacesCommand,
  DescribeVolumesCommand,
  EC2Client,
  type Instance,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import {
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import ipaddr from 'ipaddr.js';
import { parse as parseYaml } from 'yaml';
import { parseEnvironment } from '../../src/config/load.js';
import { bootstrapNames, etcdMembers } from '../../src/config/topology.js';
import { UserError } from '../../src/errors.js';
import { exec } from '../../src/exec/index.js';
import { toolkitRoot } from '../../src/paths.js';
import { Terraform } from '../../src/terraform/driver.js';
import { type TfVars, tfVars } from '../../src/terraform/vars.js';
import { useMoto } from '../helpers/moto.js';
import { renderUnit } from '../helpers/unit.js';

/**
 * The platform Terraform, for real: the terraform binary and the AWS provider (from the
 * filesystem mirror) against a moto_server, driven through src/terraform/driver.ts:
 * init (S3 backend with use_lockfile) → validate → plan → apply → plan again (must be
 * empty: no perpetual diff) → destroy. About two minutes, most of it the provider waiting
 * for the two network load balancers.
 */

const moto = useMoto({ resetEach: false });
const root = toolkitRoot();
const terraformDir = path.join(root, 'platform', 'terraform');
const region = 'eu-west-1';
const ACCOUNT = '123456789012'; // moto's default account

const cfg = parseEnvironment(
  'tf-it',
  readFileSync(path.join(root, 'environments', 'play.env'), 'utf8'),
  'environments/play.env',
);
const names = bootstrapNames(cfg, ACCOUNT);
const timings: Record<string, number> = {};

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings[label] = (Date.now() - t0) / 1000;
  }
}

const tag = (i: Instance, key: string) => i.Tags?.find((t) => t.Key === key)?.Value;

describe('platform/terraform against the local AWS', () => {
  let tf: Terraform;
  let vars: TfVars;
  let planFile: string;
  let s3: S3Client;
  let ec2: EC2Client;
  let asg: AutoScalingClient;
  let elb: ElasticLoadBalancingV2Client;

  beforeAll(async () => {
    const common = {
      region,
      endpoint: moto.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    s3 = new S3Client({ ...common, forcePathStyle: true });
    ec2 = new EC2Client(common);
    asg = new AutoScalingClient(common);
    elb = new ElasticLoadBalancingV2Client(common);
    for (const Bucket of [names.stateBucket, names.secretsBucket]) {
      await s3.send(
        new CreateBucketCommand({ Bucket, CreateBucketConfiguration: { LocationConstraint: region } }),
      );
    }
    const key = await new KMSClient(common).send(new CreateKeyCommand({ Description: 'tf-it' }));
    const image = await ec2.send(
      new RegisterImageCommand({
        Name: 'tf-it-node',
        Architecture: 'x86_64',
        RootDeviceName: '/dev/sda1',
        VirtualizationType: 'hvm',
        BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 8 } }],
      }),
    );
    // A key pair made now, for this run only.
    const keyDir = mkdtempSync(path.join(os.tmpdir(), 'kp-tf-it-key-'));
    await exec(
      'ssh-keygen',
      ['-q', '-t', 'ed25519', '-N', '', '-C', 'tf-it', '-f', path.join(keyDir, 'id')],
      {
        cwd: keyDir,
      },
    );
    const agent = Buffer.from('// stand-in manifest-sync bundle\n');
    const agentSha256 = createHash('sha256').update(agent).digest('hex');
    vars = tfVars(cfg, {
      amiId: image.ImageId!,
      sshPublicKey: readFileSync(path.join(keyDir, 'id.pub'), 'utf8'),
      secretsBucket: names.secretsBucket,
      kmsKeyArn: key.KeyMetadata!.Arn!,
      agentBucket: names.stateBucket,
      agentObjectKey: `agent/manifest-sync-${agentSha256}.mjs`,
      agentSha256,
    });
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kp-tf-it-data-'));
    planFile = path.join(dataDir, 'platform.tfplan');
    tf = await Terraform.create({ dir: terraformDir, dataDir, env: moto.env, quiet: true });
  }, 60_000);

  afterAll(() => {
    process.stderr.write(
      `terraform timings (s): ${Object.entries(timings)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(', ')}\n`,
    );
    for (const c of [s3, ec2, asg]) c?.destroy();
  });

  test('terraform fmt -check -recursive: the configuration is formatted', async () => {
    const r = await exec(tf.binary, ['fmt', '-check', '-recursive', '-diff', '-no-color'], {
      cwd: terraformDir,
      env: tf.childEnv(),
      reject: false,
    });
    expect(r.stdout).toBe('');
    expect(r.exitCode).toBe(0);
  });

  test('init with the S3 backend in the state bucket, then validate', async () => {
    await timed('init', () =>
      tf.init({ bucket: names.stateBucket, key: names.stateKey, region, endpoint: moto.endpoint }),
    );
    await timed('validate', () => tf.validate());
  }, 120_000);

  test('the first plan creates the whole platform', async () => {
    const plan = await timed('plan', () => tf.plan(vars, planFile));
    expect(plan.changes).toBe(true);
    expect(plan.change).toBe(0);
    expect(plan.destroy).toBe(0);
    expect(plan.add).toBeGreaterThan(100);
    expect(plan.addresses).toEqual(
      expect.arrayContaining([
        'module.masters.aws_autoscaling_group.this["etcd-0"]',
        'module.masters.aws_network_interface.this["etcd-2"]',
        'module.masters.aws_ebs_volume.this["etcd-1"]',
        'module.workers.aws_autoscaling_group.this',
        'module.bastion.aws_autoscaling_group.this',
        'module.launch_template["masters"].aws_launch_template.this',
        'module.launch_template["bastion"].aws_launch_template.this',
        'module.api_lb_public.aws_lb.this',
        'module.dns.aws_route53_zone.private',
      ]),
    );
    expect(plan.addresses).not.toContain('module.dns.aws_route53_zone.public[0]'); // manage_public_zone = false
    const text = await tf.showPlan(planFile);
    expect(text).toContain('module.launch_template["masters"].aws_launch_template.this will be created');
  }, 180_000);

  test('apply: ASGs up, instances running with their Name/Environment/Layer tags', async () => {
    await timed('apply', () => tf.apply(planFile));
    const out = await tf.output();
    const masterAsgs = out.master_asg_names as string[];
    expect(masterAsgs).toEqual(['tf-it-etcd-0', 'tf-it-etcd-1', 'tf-it-etcd-2']);
    const groups = await asg.send(
      new DescribeAutoScalingGroupsCommand({
        AutoScalingGroupNames: [...masterAsgs, out.worker_asg_name as string, out.bastion_asg_name as string],
      }),
    );
    const desired = Object.fromEntries(
      (groups.AutoScalingGroups ?? []).map((g) => [g.AutoScalingGroupName, g.DesiredCapacity]),
    );
    expect(desired).toEqual({
      'tf-it-etcd-0': 1,
      'tf-it-etcd-1': 1,
      'tf-it-etcd-2': 1,
      'tf-it-compute': 2,
      'tf-it-bastion': 1,
    });
    // each ASG launches the latest version of its kind of node's launch template
    const launches = Object.fromEntries(
      (groups.AutoScalingGroups ?? []).map((g) => [
        g.AutoScalingGroupName,
        [g.LaunchTemplate?.LaunchTemplateName, g.LaunchTemplate?.Version],
      ]),
    );
    expect(launches).toEqual({
      'tf-it-etcd-0': ['tf-it-secure', '1'],
      'tf-it-etcd-1': ['tf-it-secure', '1'],
      'tf-it-etcd-2': ['tf-it-secure', '1'],
      'tf-it-compute': ['tf-it-compute', '1'],
      'tf-it-bastion': ['tf-it-bastion', '1'],
    });

    const reservations = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:Environment', Values: ['tf-it'] },
          { Name: 'instance-state-name', Values: ['running'] },
        ],
      }),
    );
    const instances = (reservations.Reservations ?? []).flatMap((r) => r.Instances ?? []);
    const byName = (n: string) => instances.filter((i) => tag(i, 'Name') === n);
    expect(instances).toHaveLength(6);
    expect(byName('tf-it-secure')).toHaveLength(3);
    expect(byName('tf-it-compute')).toHaveLength(2);
    expect(byName('tf-it-bastion')).toHaveLength(1);
    expect(byName('tf-it-compute').every((i) => tag(i, 'Layer') === 'compute')).toBe(true);
    expect(tag(byName('tf-it-bastion')[0]!, 'Layer')).toBe('bastion');

    // each master in its member's zone and secure subnet, tagged with its member
    for (const m of etcdMembers(cfg)) {
      const [master] = byName('tf-it-secure').filter((i) => tag(i, 'EtcdMember') === m.name);
      expect(master).toBeDefined();
      expect(tag(master!, 'Layer')).toBe('secure');
      expect(master!.Placement?.AvailabilityZone).toBe(m.availabilityZone);
      expect(ipaddr.IPv4.parse(master!.PrivateIpAddress!).match(ipaddr.IPv4.parseCIDR(m.subnetCidr))).toBe(
        true,
      );
    }
  }, 600_000);

  test("each etcd member's ENI has its fixed address and its volume is encrypted, both tagged for the claim", async () => {
    const members = etcdMembers(cfg);
    const filters = [
      { Name: 'tag:Environment', Values: ['tf-it'] },
      { Name: 'tag:EtcdMember', Values: members.map((m) => m.name) },
    ];
    const enis =
      (await ec2.send(new DescribeNetworkInterfacesCommand({ Filters: filters }))).NetworkInterfaces ?? [];
    const eniByMember = Object.fromEntries(
      enis.map((e) => [
        e.TagSet?.find((t) => t.Key === 'EtcdMember')?.Value,
        [e.PrivateIpAddress, e.AvailabilityZone],
      ]),
    );
    expect(eniByMember).toEqual(Object.fromEntries(members.map((m) => [m.name, [m.ip, m.availabilityZone]])));

    const volumes = (await ec2.send(new DescribeVolumesCommand({ Filters: filters }))).Volumes ?? [];
    expect(volumes).toHaveLength(3);
    for (const v of volumes) {
      expect(v.Encrypted).toBe(true);
      expect(v.KmsKeyId).toBe(vars.kms_key_arn);
      expect(v.VolumeType).toBe('gp3');
      expect(v.Tags?.find((t) => t.Key === 'Layer')?.Value).toBe('secure');
    }
  });

  test('launch templates: IMDSv2 only, encrypted root volume, cloud-init within 16 KiB that starts manifest-sync', async () => {
    const sgs = (await tf.output()).security_group_ids as Record<string, string>;
    const expected: Record<
      string,
      { role: string; layer: string; rootGiB: number; publicIp: boolean; units: string[] }
    > = {
      'tf-it-secure': {
        role: 'masters',
        layer: 'secure',
        rootGiB: 30,
        publicIp: false,
        units: ['manifest-sync@common.service', 'manifest-sync@secure.service', 'kp-etcd-claim.service'],
      },
      'tf-it-compute': {
        role: 'workers',
        layer: 'compute',
        rootGiB: 50,
        publicIp: false,
        units: ['manifest-sync@common.service', 'manifest-sync@compute.service'],
      },
      'tf-it-bastion': {
        role: 'bastion',
        layer: 'bastion',
        rootGiB: 20,
        publicIp: true,
        units: ['manifest-sync@common.service'],
      },
    };
    const outputs = await tf.output();
    for (const [name, { role, layer, rootGiB, publicIp, units }] of Object.entries(expected)) {
      const r = await ec2.send(
        new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: name, Versions: ['$Latest'] }),
      );
      const data = r.LaunchTemplateVersions?.[0]?.LaunchTemplateData;
      expect(data?.MetadataOptions).toEqual({
        HttpEndpoint: 'enabled',
        HttpTokens: 'required',
        HttpPutResponseHopLimit: 1,
        InstanceMetadataTags: 'enabled',
      });
      expect(data?.IamInstanceProfile?.Name).toBe(`tf-it-${role}`);
      expect(data?.BlockDeviceMappings).toHaveLength(1);
      expect(data?.BlockDeviceMappings?.[0]?.DeviceName).toBe('/dev/sda1'); // the AMI's root device
      expect(data?.BlockDeviceMappings?.[0]?.Ebs).toEqual(
        expect.objectContaining({ Encrypted: true, VolumeType: 'gp3', VolumeSize: rootGiB }),
      );
      const volumeTags = data?.TagSpecifications?.find((t) => t.ResourceType === 'volume')?.Tags ?? [];
      expect(volumeTags).toEqual(
        expect.arrayContaining([
          { Key: 'Environment', Value: 'tf-it' },
          { Key: 'Layer', Value: layer },
          { Key: 'Name', Value: name },
        ]),
      );
      // the bastion's security group sits on the network interface that asks for a public
      // address (EC2 refuses groups in both places); the other nodes have private addresses only
      if (publicIp) {
        expect(data?.SecurityGroupIds ?? []).toEqual([]);
        expect(data?.NetworkInterfaces).toEqual([
          expect.objectContaining({ DeviceIndex: 0, AssociatePublicIpAddress: true, Groups: [sgs[role]] }),
        ]);
      } else {
        expect(data?.SecurityGroupIds).toEqual([sgs[role]]);
        expect(data?.NetworkInterfaces ?? []).toEqual([]);
      }

      // shipped gzip-compressed (cloud-init uncompresses it); the output reports the
      // compressed size, which is what EC2 limits to 16 KiB
      const shipped = Buffer.from(data?.UserData ?? '', 'base64');
      expect(shipped.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b])); // gzip magic (RFC 1952)
      expect(shipped.length).toBeLessThanOrEqual(16384);
      expect(shipped.length).toBe((outputs.user_data_sizes as Record<string, number>)[role]);
      const userData = gunzipSync(shipped).toString('utf8');
      expect(userData.startsWith('#cloud-config\n')).toBe(true);
      const doc = parseYaml(userData) as {
        write_files: { path: string; content: string }[];
        runcmd: string[][];
      };
      const files = Object.fromEntries(doc.write_files.map((f) => [f.path, f.content]));
      const unit = files['/etc/systemd/system/manifest-sync@.service']!;
      // the unit cloud-init installs is the one test/helpers/unit.ts renders (less full-line comments)
      const rendered = await renderUnit(toolkitRoot(), {
        environment: 'tf-it',
        bucket: names.secretsBucket,
        region,
      });
      const withoutComments = (t: string) =>
        t
          .split('\n')
          .filter((l) => !/^\s*#( |$)/.test(l))
          .join('\n')
          .trim();
      expect(withoutComments(unit)).toBe(withoutComments(rendered));
      expect(unit).toContain(
        `ExecStart=/usr/bin/node --lite-mode --max-semi-space-size=1 /opt/kube-platform/manifest-sync.mjs --environment tf-it --bucket ${names.secretsBucket} --region ${region} --layer %i --dest /etc/kubernetes/manifests --root /etc/kubernetes --state-dir /var/lib/kube-platform`,
      );
      expect(unit).toContain('Restart=always');
      expect(files['/usr/local/sbin/kp-fetch-agent']).toContain(`want=${vars.agent_sha256}`);
      expect(files['/usr/local/sbin/kp-fetch-agent']).toContain(
        `s3://${names.stateBucket}/${vars.agent_object_key}`,
      );
      for (const [file, content] of Object.entries(files).filter(([, c]) => c.startsWith('#!/bin/bash'))) {
        const check = await exec('bash', ['-n'], { cwd: os.tmpdir(), input: content, reject: false });
        expect([file, check.stderr]).toEqual([file, '']);
      }
      const started = doc.runcmd.flat().filter((w) => w.endsWith('.service'));
      expect(started).toEqual(expect.arrayContaining(units));
      if (name === 'tf-it-secure') {
        expect(files['/var/lib/kubelet/config.yaml']).toContain('staticPodPath: /etc/kubernetes/manifests');
        expect(files['/usr/local/sbin/kp-etcd-claim']).toContain(
          'initial-cluster: etcd-0=https://10.80.10.10:2380,etcd-1=https://10.80.11.10:2380,etcd-2=https://10.80.12.10:2380',
        );
        expect(files['/usr/local/sbin/kp-etcd-claim']).toContain('$pki/members/$name/server.crt');
      } else {
        expect(started).not.toContain('manifest-sync@secure.service');
        expect(files['/usr/local/sbin/kp-etcd-claim']).toBeUndefined();
      }
    }
  });

  test('IAM: each role decrypts only its layers, for this environment, and reads only their prefixes', async () => {
    const state = (await tf.showJson()) as {
      values: {
        root_module: {
          child_modules?: {
            address: string;
            resources: { type: string; name: string; index?: string; values: { policy?: string } }[];
          }[];
        };
      };
    };
    const iam = state.values.root_module.child_modules?.find((m) => m.address === 'module.iam');
    const policy = (role: string) => {
      // the layers policy (aws_iam_role_policy.this; .components is checked by workloads-aws.test.ts)
      const r = iam?.resources.find(
        (x) => x.type === 'aws_iam_role_policy' && x.name === 'this' && x.index === role,
      );
      return JSON.parse(r?.values.policy ?? '{}') as {
        Statement: {
          Sid: string;
          Resource: string | string[];
          Condition?: Record<string, Record<string, string | string[]>>;
        }[];
      };
    };
    const list = (v: string | string[] | undefined) => (v === undefined ? [] : [v].flat().sort());
    const layers = { masters: ['common', 'secure'], workers: ['common', 'compute'], bastion: ['common'] };
    for (const [role, allowed] of Object.entries(layers)) {
      const statements = Object.fromEntries(policy(role).Statement.map((s) => [s.Sid, s]));
      const decrypt = statements.DecryptLayerDataKeys!;
      expect(list(decrypt.Condition?.StringEquals?.['kms:EncryptionContext:layer'])).toEqual(allowed);
      expect(list(decrypt.Condition?.StringEquals?.['kms:EncryptionContext:environment'])).toEqual(['tf-it']);
      expect(list(decrypt.Resource)).toEqual([vars.kms_key_arn]);
      const readable = list(statements.ReadLayers!.Resource).map((a) =>
        a
          .replace(`arn:aws:s3:::${names.secretsBucket}/`, 'secrets:')
          .replace(`arn:aws:s3:::${names.stateBucket}/`, 'state:'),
      );
      // the layers it may read in the secrets bucket, and only the agent bundle in the state bucket
      expect(readable).toEqual(
        [
          ...allowed.map((l) => `secrets:${l}/*`),
          ...allowed.map((l) => `secrets:index/${l}`),
          'state:agent/*',
        ].sort(),
      );
      expect(list(statements.WriteStatus!.Resource)).toEqual(
        allowed.map((l) => `arn:aws:s3:::${names.secretsBucket}/status/${l}/*`).sort(),
      );
      expect(statements.AttachEtcdEniAndVolume !== undefined).toBe(role === 'masters');
    }
  });

  test('API load balancers: the internal one does not preserve client IPs (a master reaches itself through it)', async () => {
    const preserve: Record<string, string | undefined> = {};
    for (const name of ['tf-it-api', 'tf-it-api-int']) {
      const tg = (await elb.send(new DescribeTargetGroupsCommand({ Names: [name] }))).TargetGroups?.[0];
      expect(tg?.Port).toBe(6443);
      const attrs = await elb.send(
        new DescribeTargetGroupAttributesCommand({ TargetGroupArn: tg?.TargetGroupArn }),
      );
      preserve[name] = attrs.Attributes?.find((a) => a.Key === 'preserve_client_ip.enabled')?.Value;
    }
    expect(preserve['tf-it-api-int']).toBe('false');
    // the public one keeps the AWS default (on): left unset, which the local AWS omits
    expect(preserve['tf-it-api']).not.toBe('false');
  });

  test('the state is in the state bucket, and no lock is left behind', async () => {
    const head = await s3.send(new HeadObjectCommand({ Bucket: names.stateBucket, Key: names.stateKey }));
    expect(head.ContentLength).toBeGreaterThan(1000);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: names.stateBucket }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toEqual([names.stateKey]);
  });

  test('outputs describe what was built', async () => {
    const out = await tf.output();
    expect(out.vpc_id).toMatch(/^vpc-/);
    expect(Object.keys(out.subnet_ids as object).sort()).toEqual(['compute', 'elb', 'mgmt', 'secure']);
    expect((out.subnet_ids as Record<string, string[]>).secure).toHaveLength(3);
    expect(Object.keys(out.security_group_ids as object).sort()).toEqual([
      'api_internal',
      'api_public',
      'bastion',
      'masters',
      'workers',
    ]);
    expect(out.role_names).toEqual({
      masters: 'tf-it-masters',
      workers: 'tf-it-workers',
      bastion: 'tf-it-bastion',
    });
    expect(typeof out.api_lb_dns_name).toBe('string');
    expect(out.private_zone_id).toMatch(/\S/);
    for (const size of Object.values(out.user_data_sizes as Record<string, number>)) {
      expect(size).toBeLessThanOrEqual(16384);
    }
  });

  test('a second plan has no changes (idempotent: no perpetual diff)', async () => {
    const again = await timed('plan2', () => tf.plan(vars, planFile));
    expect(again.addresses).toEqual([]);
    expect({ add: again.add, change: again.change, destroy: again.destroy }).toEqual({
      add: 0,
      change: 0,
      destroy: 0,
    });
    expect(again.changes).toBe(false);
  }, 180_000);

  test('destroy removes the ASGs and their instances', async () => {
    await timed('destroy', () => tf.destroy(vars));
    const groups = await asg.send(
      new DescribeAutoScalingGroupsCommand({
        AutoScalingGroupNames: [
          'tf-it-etcd-0',
          'tf-it-etcd-1',
          'tf-it-etcd-2',
          'tf-it-compute',
          'tf-it-bastion',
        ],
      }),
    );
    expect(groups.AutoScalingGroups ?? []).toEqual([]);
    const running = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:Environment', Values: ['tf-it'] },
          { Name: 'instance-state-name', Values: ['pending', 'running'] },
        ],
      }),
    );
    expect((running.Reservations ?? []).flatMap((r) => r.Instances ?? [])).toEqual([]);
    expect(await tf.output()).toEqual({});
  }, 600_000);
});

describe('variables.tf and the preconditions reject bad input before anything is created', () => {
  let copy: string;
  let binary: string;
  let env: Record<string, string | undefined>;
  let good: TfVars;

  beforeAll(async () => {
    // A copy of the root module with a local backend (an override file), so that plans need
    // no state bucket; the provider still talks to the local AWS.
    copy = mkdtempSync(path.join(os.tmpdir(), 'kp-tf-it-copy-'));
    cpSync(terraformDir, copy, {
      recursive: true,
      filter: (src) => !path.basename(src).startsWith('.terraform'),
    });
    writeFileSync(path.join(copy, 'backend_override.tf'), 'terraform {\n  backend "local" {}\n}\n');
    const tf = await Terraform.create({
      dir: copy,
      dataDir: path.join(copy, '.data'),
      env: moto.env,
      quiet: true,
    });
    binary = tf.binary;
    env = tf.childEnv();
    await exec(binary, ['init', '-input=false', '-no-color'], { cwd: copy, env });
    const ec2 = new EC2Client({
      region,
      endpoint: moto.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const image = await ec2.send(
      new RegisterImageCommand({ Name: 'tf-it-bad', RootDeviceName: '/dev/sda1', VirtualizationType: 'hvm' }),
    );
    ec2.destroy();
    good = tfVars(cfg, {
      amiId: image.ImageId!,
      sshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKpQmA7oYtH9e3a0sN7w8O3k4Hn0JYxW4s4l8Yb2yW5f tf-it',
      secretsBucket: names.secretsBucket,
      kmsKeyArn: `arn:aws:kms:${region}:${ACCOUNT}:key/00000000-1111-2222-3333-444444444444`,
      agentBucket: names.stateBucket,
      agentObjectKey: `agent/manifest-sync-${'0'.repeat(64)}.mjs`,
      agentSha256: '0'.repeat(64),
    });
  }, 120_000);

  /** Plans `vars` in the copy; returns terraform's exit code and its error output. */
  async function planWith(vars: TfVars, name: string): Promise<{ exitCode: number; stderr: string }> {
    const file = path.join(copy, `${name}.tfvars.json`);
    writeFileSync(file, JSON.stringify(vars));
    const r = await exec(
      binary,
      ['plan', '-input=false', '-no-color', '-lock=false', '-refresh=false', `-var-file=${file}`],
      {
        cwd: copy,
        env,
        reject: false,
      },
    );
    return { exitCode: r.exitCode, stderr: r.stderr.replace(/[\s│╷╵]+/g, ' ').trim() };
  }

  const members = () => good.etcd_members.map((m) => ({ ...m }));
  const cases: [string, (v: TfVars) => TfVars, RegExp][] = [
    [
      'an etcd member ip outside its subnet',
      (v) => ({ ...v, etcd_members: members().map((m, i) => (i === 0 ? { ...m, ip: '10.80.99.10' } : m)) }),
      /an ip inside its subnet_cidr/,
    ],
    [
      'an even number of etcd members',
      (v) => ({ ...v, etcd_members: members().slice(0, 2) }),
      /1, 3, 5 or 7 etcd members/,
    ],
    [
      'an agent outside agent/',
      (v) => ({ ...v, agent_object_key: 'secure/pki/ca.key' }),
      /S3 key under agent\//,
    ],
    [
      'an SSH key smuggling a second line into the user data',
      (v) => ({ ...v, ssh_public_key: `${v.ssh_public_key}\nruncmd: [reboot]` }),
      /one OpenSSH public key line/,
    ],
    ['a VPC CIDR with host bits', (v) => ({ ...v, vpc_cidr: '10.80.0.1/16' }), /no host bits set/],
    ['a malformed agent digest', (v) => ({ ...v, agent_sha256: 'abc' }), /64 lower-case hex digits/],
    [
      "an etcd member placed in another zone's subnet",
      (v) => ({
        ...v,
        etcd_members: members().map((m, i) => (i === 0 ? { ...m, availability_zone: 'eu-west-1b' } : m)),
      }),
      /is not the secure subnet of eu-west-1b/,
    ],
    [
      'a subnet layer without one subnet per zone',
      (v) => ({ ...v, compute_subnets: v.compute_subnets.slice(0, 2) }),
      /exactly one subnet per availability zone/,
    ],
    [
      'more workers than worker_max',
      (v) => ({ ...v, worker_count: v.worker_max + 1 }),
      /Pool compute: need min_count \(0\) <= desired_count \(5\) <= max_count \(4\)/,
    ],
  ];

  test('the good variables plan cleanly (the cases below differ by one value)', async () => {
    const r = await planWith(good, 'good');
    expect([r.exitCode, r.stderr]).toEqual([0, '']);
  }, 120_000);

  test.each(cases)(
    '%s',
    async (label, mutate, message) => {
      const r = await planWith(mutate(good), label.replace(/\W+/g, '-'));
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(message);
    },
    120_000,
  );
});

describe('modules/launch-template refuses user data over 16 KiB once compressed, counted in bytes', () => {
  let dir: string;
  let tf: Terraform;

  beforeAll(async () => {
    // A root module of its own around the launch template module (a local backend), with the
    // CLI configuration template the driver renders (provider mirror).
    dir = mkdtempSync(path.join(os.tmpdir(), 'kp-tf-it-lt-'));
    cpSync(path.join(terraformDir, 'cli.tfrc.tmpl'), path.join(dir, 'cli.tfrc.tmpl'));
    const module = path.join(terraformDir, 'modules', 'launch-template');
    writeFileSync(
      path.join(dir, 'main.tf'),
      `provider "aws" {
  region = "${region}"
}

variable "user_data" {
  type = string
}

module "lt" {
  source                = ${JSON.stringify(module)}
  environment           = "tf-it"
  name                  = "size"
  layer                 = "compute"
  description           = "user data size check"
  ami_id                = "ami-0123456789abcdef0"
  root_device_name      = "/dev/sda1"
  instance_type         = "t3.micro"
  key_name              = "tf-it"
  instance_profile_name = "tf-it-workers"
  security_group_ids    = ["sg-0123456789abcdef0"]
  user_data             = var.user_data
  root_volume_size      = 8
}
`,
    );
    tf = await Terraform.create({ dir, dataDir: path.join(dir, '.data'), env: moto.env, quiet: true });
    await exec(tf.binary, ['init', '-input=false', '-no-color'], { cwd: dir, env: tf.childEnv() });
  }, 120_000);

  async function planUserData(userData: string): Promise<{ exitCode: number; stderr: string }> {
    const file = path.join(dir, 'user-data.tfvars.json');
    writeFileSync(file, JSON.stringify({ user_data: userData }));
    const r = await exec(
      tf.binary,
      ['plan', '-input=false', '-no-color', '-lock=false', `-var-file=${file}`],
      {
        cwd: dir,
        env: tf.childEnv(),
        reject: false,
      },
    );
    return { exitCode: r.exitCode, stderr: r.stderr.replace(/[\s│╷╵]+/g, ' ').trim() };
  }

  test('compressible text far over 16 KiB is planned: it ships gzip-compressed', async () => {
    const text = `#cloud-config\n${'write_files:\n  - path: /etc/example\n    content: same line again\n'.repeat(2000)}`;
    expect(Buffer.byteLength(text)).toBeGreaterThan(4 * 16384);
    expect(await planUserData(text)).toEqual({ exitCode: 0, stderr: '' });
  }, 120_000);

  test.each([
    ['ASCII text', () => randomBytes(20_000).toString('base64')],
    [
      'two-byte characters',
      () => [...randomBytes(24_000)].map((b) => String.fromCharCode(0x80 + b)).join(''),
    ],
  ])(
    'incompressible %s over 16 KiB once compressed: refused, with both sizes in bytes',
    async (_label, make) => {
      const text = make();
      const r = await planUserData(text);
      expect(r.exitCode).toBe(1);
      const m = r.stderr.match(
        /Launch template tf-it-size: the user data is (\d+) bytes gzip-compressed \((\d+) bytes of text\); EC2 allows at most 16384\./,
      );
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(16384);
      expect(Number(m![2])).toBe(Buffer.byteLength(text)); // bytes, not characters
    },
    120_000,
  );
});

describe('validate', () => {
  test('an invalid configuration is a UserError naming file and line', async () => {
    const copy = mkdtempSync(path.join(os.tmpdir(), 'kp-tf-it-invalid-'));
    cpSync(terraformDir, copy, {
      recursive: true,
      filter: (src) => !path.basename(src).startsWith('.terraform'),
    });
    const tf = await Terraform.create({
      dir: copy,
      dataDir: path.join(copy, '.data'),
      env: moto.env,
      quiet: true,
    });
    await exec(tf.binary, ['init', '-backend=false', '-input=false', '-no-color'], {
      cwd: copy,
      env: tf.childEnv(),
    });
    await tf.validate(); // the shipped configuration is valid
    writeFileSync(
      path.join(copy, 'broken.tf'),
      '\nresource "aws_eip" "broken" {\n  domain = var.no_such_variable\n}\n',
    );
    const e = await tf.validate().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/broken\.tf:3: Reference to undeclared input variable/);
  }, 120_000);
});
