import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EC2Client, RegisterImageCommand } from '@aws-sdk/client-ec2';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { parse as parseYaml } from 'yaml';
import { parseEnvironment } from '../../src/config/load.js';
import { bootstrapNames } from '../../src/config/topology.js';
import { exec } from '../../src/exec/index.js';
import { setLogSink } from '../../src/log.js';
import { terraformDir, toolkitRoot } from '../../src/paths.js';
import { planView, RULES } from '../../src/policy/index.js';
import { wildcardActions } from '../../src/policy/rules/aws.js';
import { Terraform } from '../../src/terraform/driver.js';
import { tfVars } from '../../src/terraform/vars.js';
import { useMoto } from '../helpers/moto.js';
import { RENDER_ACCOUNT, renderUserData, type UserData } from '../helpers/user-data.js';

/**
 * A cluster that serves workloads on AWS (issue 15), the node and AWS side:
 * - the user data terraform renders: kp-kubelet, run for real against a stand-in IMDS and a
 *   recording kubelet, starts the cluster kubelet with --cloud-provider=external, the
 *   instance's private DNS name and its providerID (what cloud-provider-aws expects), and on
 *   workers the ECR credential provider; kp-install refuses an ecr-credential-provider whose
 *   SHA-256 is not the pinned one; kubelets ask for CA-signed serving certificates;
 * - `terraform plan` of platform/terraform against the local AWS: the subnet, security group
 *   and instance tags the cloud-controller-manager discovers the cluster by, and each node
 *   role's component policy checked against the upstream policies
 *   (test/fixtures/iam/upstream-policies.json): no action a component's upstream policy does
 *   not list, none left out without a reason, no wildcard action in any role's policy (the
 *   "no wildcard action" rule, as a test until the policy engine of issue 12 exists).
 */

const root = toolkitRoot();
const work = mkdtempSync(path.join(os.tmpdir(), 'workloads-aws-'));
let restoreLog: () => void;

interface CloudConfig {
  write_files: { path: string; permissions: string; content: string }[];
}
let userData: UserData;
const filesOf = (role: keyof UserData) =>
  new Map((parseYaml(userData[role]) as CloudConfig).write_files.map((f) => [f.path, f.content]));

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  ({ userData } = await renderUserData(work));
}, 120_000);

afterAll(async () => {
  restoreLog();
  await rm(work, { recursive: true, force: true });
});

describe('kp-kubelet in cluster mode, run against a stand-in IMDS and a recording kubelet', () => {
  const KUBELET_SH = '/usr/local/sbin/kp-kubelet';
  let runs = 0;

  /** Runs the role's kp-kubelet with its fixed paths moved under `dir`; returns the kubelet argv and config. */
  async function runKubelet(role: 'masters' | 'workers', metadata: Record<string, string>) {
    const dir = path.join(work, `kubelet-${role}-${++runs}`);
    const etc = path.join(dir, 'etc-kubernetes');
    const bin = path.join(dir, 'bin');
    await mkdir(path.join(etc, 'pki'), { recursive: true });
    await mkdir(bin, { recursive: true });
    await writeFile(path.join(etc, 'pki', 'ca.crt'), 'CA\n');
    await writeFile(path.join(etc, 'kubelet.conf'), 'kubeconfig\n');
    const files = filesOf(role);
    await writeFile(path.join(dir, 'config.yaml'), files.get('/var/lib/kubelet/config.yaml')!);
    const script = files
      .get(KUBELET_SH)!
      .replace('k=/etc/kubernetes\n', `k=${etc}\n`)
      .replaceAll('/usr/bin/kubelet', path.join(bin, 'kubelet'))
      .replaceAll('/var/lib/kubelet/config.yaml', path.join(dir, 'config.yaml'))
      .replaceAll('/run/kp-kubelet.mode', path.join(dir, 'mode'))
      .replaceAll('/run/kp-kubelet', path.join(dir, 'run'));
    expect(script).not.toMatch(/ \/(etc|run|var)\//);
    await writeFile(path.join(dir, 'kp-kubelet'), script, { mode: 0o755 });
    // IMDSv2: a token from PUT /latest/api/token, then GET /latest/meta-data/<item> with it
    const curl = [
      '#!/bin/bash',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
      'url=${@: -1}',
      'case "$*" in',
      '*"-X PUT"*) [ "$url" = http://169.254.169.254/latest/api/token ] && echo token-1 && exit 0; exit 22 ;;',
      '*"X-aws-ec2-metadata-token: token-1"*) ;;',
      '*) exit 22 ;;',
      'esac',
      'case "$url" in',
      ...Object.entries(metadata).map(
        ([k, v]) => `http://169.254.169.254/latest/meta-data/${k}) printf '%s' '${v}' ;;`,
      ),
      '*) exit 22 ;;',
      'esac',
      '',
    ].join('\n');
    await writeFile(path.join(bin, 'curl'), curl, { mode: 0o755 });
    await writeFile(
      path.join(bin, 'kubelet'),
      `#!/bin/bash\nprintf '%s\\n' "$@" >${path.join(dir, 'argv')}\n`,
      { mode: 0o755 },
    );
    const r = await exec(path.join(dir, 'kp-kubelet'), ['exec'], {
      cwd: dir,
      env: { PATH: `${bin}:${process.env.PATH}` },
      reject: false,
    });
    const argv = await readFile(path.join(dir, 'argv'), 'utf8').then(
      (t) => t.trimEnd().split('\n'),
      () => [] as string[],
    );
    const config = await readFile(path.join(dir, 'run', 'config.yaml'), 'utf8').catch(() => undefined);
    return { r, argv, config, etc, dir };
  }

  const GOOD = {
    'local-hostname': 'ip-10-80-20-7.eu-west-1.compute.internal',
    'placement/availability-zone': 'eu-west-1b',
    'instance-id': 'i-0123456789abcdef0',
  };

  test('workers: --cloud-provider=external, named after the private DNS name, providerID in the config, ECR credentials', async () => {
    const { r, argv, config, etc, dir } = await runKubelet('workers', GOOD);
    expect([r.exitCode, r.stderr]).toEqual([0, '']);
    expect(argv).toEqual([
      `--config=${dir}/run/config.yaml`,
      `--kubeconfig=${etc}/kubelet.conf`,
      '--cloud-provider=external',
      '--hostname-override=ip-10-80-20-7.eu-west-1.compute.internal',
      `--image-credential-provider-config=${etc}/credential-providers.yaml`,
      '--image-credential-provider-bin-dir=/usr/local/libexec/kubelet-credential-providers',
    ]);
    // the shipped config plus the instance's providerID, as cloud-provider-aws formats it
    const cfg = parseYaml(config!) as Record<string, unknown>;
    expect(cfg.providerID).toBe('aws:///eu-west-1b/i-0123456789abcdef0');
    const shipped = parseYaml(filesOf('workers').get('/var/lib/kubelet/config.yaml')!) as Record<
      string,
      unknown
    >;
    expect(cfg).toEqual({ ...shipped, providerID: cfg.providerID });
    expect(shipped.serverTLSBootstrap).toBe(true);
  });

  test('masters: the same cloud-provider settings, no ECR credential provider (masters hold no ECR permission)', async () => {
    const { r, argv } = await runKubelet('masters', { ...GOOD, 'instance-id': 'i-0fedcba9876543210' });
    expect(r.exitCode).toBe(0);
    expect(argv).toContain('--cloud-provider=external');
    expect(argv).toContain('--hostname-override=ip-10-80-20-7.eu-west-1.compute.internal');
    expect(argv.filter((a) => a.startsWith('--image-credential-provider'))).toEqual([]);
    expect(filesOf('masters').has('/etc/kubernetes/credential-providers.yaml')).toBe(false);
  });

  test('refuses instance metadata it does not expect (no kubelet started)', async () => {
    for (const bad of [
      { ...GOOD, 'local-hostname': 'ip-10-80-20-7 --v=9' },
      { ...GOOD, 'instance-id': 'i-0123;x' },
      { ...GOOD, 'placement/availability-zone': '' },
    ]) {
      const { r, argv } = await runKubelet('workers', bad);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^kp-kubelet: unexpected instance metadata: /);
      expect(argv).toEqual([]);
    }
  });

  test('standalone mode (no cluster CA yet) is unchanged: static pods only, no cloud provider', () => {
    const script = filesOf('workers').get(KUBELET_SH)!;
    expect(script).toContain('exec /usr/bin/kubelet --config=/var/lib/kubelet/standalone.yaml\n');
    const standalone = parseYaml(filesOf('workers').get('/var/lib/kubelet/standalone.yaml')!) as Record<
      string,
      unknown
    >;
    expect(standalone.serverTLSBootstrap).toBeUndefined();
  });
});

describe('the ECR credential provider on the nodes', () => {
  test("CredentialProviderConfig (kubelet.config.k8s.io/v1): the environment's own account's registries only", () => {
    const cfg = parseYaml(filesOf('workers').get('/etc/kubernetes/credential-providers.yaml')!) as {
      apiVersion: string;
      kind: string;
      providers: { name: string; matchImages: string[]; apiVersion: string; defaultCacheDuration: string }[];
    };
    expect(cfg.apiVersion).toBe('kubelet.config.k8s.io/v1');
    expect(cfg.kind).toBe('CredentialProviderConfig');
    expect(cfg.providers).toEqual([
      {
        name: 'ecr-credential-provider',
        matchImages: [
          `${RENDER_ACCOUNT}.dkr.ecr.*.amazonaws.com`,
          `${RENDER_ACCOUNT}.dkr.ecr.*.amazonaws.com.cn`,
        ],
        defaultCacheDuration: '12h',
        apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
      },
    ]);
  });

  describe("kp-install's ecr-credential-provider section, run with a stand-in download", () => {
    let section: string;
    let dir: string;
    const payload = 'ecr-credential-provider stand-in binary\n';
    const payloadSha = createHash('sha256').update(payload).digest('hex');

    beforeAll(async () => {
      const lines = filesOf('workers').get('/usr/local/sbin/kp-install')!.split('\n');
      const start = lines.indexOf('case "$(uname -m)" in');
      const end = lines.indexOf('rm -f "$cp_tmp"');
      expect(start).toBeGreaterThan(0);
      expect(end).toBeGreaterThan(start);
      dir = path.join(work, 'ecr-install');
      await mkdir(path.join(dir, 'bin'), { recursive: true });
      section = lines
        .slice(start, end + 1)
        .join('\n')
        .replaceAll('/usr/local/libexec/kubelet-credential-providers', `${dir}/libexec`);
      // curl -fsSL --proto =https -o FILE URL: writes the stand-in and records the URL
      await writeFile(
        path.join(dir, 'bin', 'curl'),
        `#!/bin/bash\nprintf '%s\\n' "\${@: -1}" >>${dir}/urls\nwhile [ "$1" != -o ]; do shift; done\nprintf '%s' '${payload.trimEnd()}' >"$2"\necho >>"$2"\n`,
      );
      await chmod(path.join(dir, 'bin', 'curl'), 0o755);
    });

    const run = async (text: string) => {
      const file = path.join(dir, 'section.sh');
      await writeFile(file, `set -euo pipefail\nretry() { "$@"; }\n${text}\n`, { mode: 0o755 });
      return exec('bash', [file], {
        cwd: dir,
        env: { PATH: `${dir}/bin:${process.env.PATH}` },
        reject: false,
      });
    };

    test('refuses a download that is not the pinned SHA-256, installs nothing', async () => {
      await rm(path.join(dir, 'libexec'), { recursive: true, force: true });
      const r = await run(section);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(
        /^kp-install: ecr-credential-provider v1\.29\.0 \((amd64|arm64)\) is not the pinned SHA-256: refusing it$/,
      );
      await expect(readFile(path.join(dir, 'libexec', 'ecr-credential-provider'))).rejects.toThrow();
      const url = (await readFile(path.join(dir, 'urls'), 'utf8')).trim().split('\n').at(-1);
      expect(url).toMatch(
        /^https:\/\/artifacts\.k8s\.io\/binaries\/cloud-provider-aws\/v1\.29\.0\/linux\/(amd64|arm64)\/ecr-credential-provider-linux-(amd64|arm64)$/,
      );
    });

    test('installs the binary (0755) where kubelet is told to look, when the digest matches', async () => {
      const pinned = /x86_64\) cp_arch=amd64 cp_sha256=([0-9a-f]{64})/.exec(section)![1]!;
      const pinnedArm = /aarch64\) cp_arch=arm64 cp_sha256=([0-9a-f]{64})/.exec(section)![1]!;
      const r = await run(section.replace(pinned, payloadSha).replace(pinnedArm, payloadSha));
      expect([r.exitCode, r.stderr]).toEqual([0, '']);
      const installed = path.join(dir, 'libexec', 'ecr-credential-provider');
      expect(await readFile(installed, 'utf8')).toBe(payload);
      expect((await stat(installed)).mode & 0o777).toBe(0o755);
    });
  });
});

describe('terraform plan of platform/terraform against the local AWS', () => {
  const moto = useMoto({ resetEach: false });
  const region = 'eu-west-1';
  const cfg = parseEnvironment(
    'wl-it',
    readFileSync(path.join(root, 'environments', 'play.env'), 'utf8'),
    'environments/play.env',
  );
  const names = bootstrapNames(cfg, RENDER_ACCOUNT);
  const cluster = 'kubernetes.io/cluster/wl-it';
  let kmsKeyArn: string;
  /** planned resources: address → values */
  let planned: Map<string, Record<string, unknown>>;
  /** the plan, as `terraform show -json` gives it */
  let planJson: unknown;

  beforeAll(async () => {
    const common = {
      region,
      endpoint: moto.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
    const s3 = new S3Client({ ...common, forcePathStyle: true });
    const ec2 = new EC2Client(common);
    for (const Bucket of [names.stateBucket, names.secretsBucket])
      await s3.send(
        new CreateBucketCommand({ Bucket, CreateBucketConfiguration: { LocationConstraint: region } }),
      );
    kmsKeyArn = (await new KMSClient(common).send(new CreateKeyCommand({ Description: 'wl-it' })))
      .KeyMetadata!.Arn!;
    const image = await ec2.send(
      new RegisterImageCommand({
        Name: 'wl-it-node',
        Architecture: 'x86_64',
        RootDeviceName: '/dev/sda1',
        VirtualizationType: 'hvm',
        BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 8 } }],
      }),
    );
    const sha = 'cd'.repeat(32);
    const vars = tfVars(cfg, {
      amiId: image.ImageId!,
      sshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1tZXJlbHktdGhlLXJlbmRlcmluZy10ZXN0LWtleQ wl-it',
      secretsBucket: names.secretsBucket,
      kmsKeyArn,
      agentBucket: names.stateBucket,
      agentObjectKey: `agent/manifest-sync-${sha}.mjs`,
      agentSha256: sha,
    });
    s3.destroy();
    ec2.destroy();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kp-wl-it-data-'));
    const tf = await Terraform.create({ dir: terraformDir(), dataDir, env: moto.env, quiet: true });
    await tf.init({ bucket: names.stateBucket, key: names.stateKey, region, endpoint: moto.endpoint });
    await tf.plan(vars, path.join(dataDir, 'wl.tfplan'));
    const plan = (await tf.showJson(path.join(dataDir, 'wl.tfplan'))) as {
      planned_values: { root_module: PlannedModule };
    };
    planJson = plan;
    planned = new Map();
    const walk = (m: PlannedModule) => {
      for (const r of m.resources ?? []) planned.set(r.address, r.values);
      for (const c of m.child_modules ?? []) walk(c);
    };
    walk(plan.planned_values.root_module);
    await rm(dataDir, { recursive: true, force: true });
  }, 300_000);

  interface PlannedModule {
    resources?: { address: string; values: Record<string, unknown> }[];
    child_modules?: PlannedModule[];
  }
  const tagsOf = (address: string) => {
    const v = planned.get(address);
    expect([address, v !== undefined]).toEqual([address, true]);
    return (v!.tags ?? {}) as Record<string, string>;
  };

  test("subnets: elb for internet-facing load balancers, compute for internal ones, both the cluster's; secure and mgmt untagged", () => {
    for (const zone of cfg.availabilityZones) {
      const sub = (layer: string) => tagsOf(`module.network.aws_subnet.this["${layer}/${zone}"]`);
      expect(sub('elb')).toMatchObject({ [cluster]: 'owned', 'kubernetes.io/role/elb': '1' });
      expect(sub('elb')).not.toHaveProperty(['kubernetes.io/role/internal-elb']);
      expect(sub('compute')).toMatchObject({ [cluster]: 'owned', 'kubernetes.io/role/internal-elb': '1' });
      expect(sub('compute')).not.toHaveProperty(['kubernetes.io/role/elb']);
      for (const layer of ['secure', 'mgmt'])
        expect(Object.keys(sub(layer)).filter((k) => k.startsWith('kubernetes.io/'))).toEqual([]);
    }
  });

  test("security groups: exactly the nodes' groups carry the cluster tag (the CCM opens those to its load balancers)", () => {
    const tagged = ['bastion', 'masters', 'workers', 'api_public', 'api_internal'].filter(
      (g) => tagsOf(`module.network.aws_security_group.this["${g}"]`)[cluster] === 'owned',
    );
    expect(tagged).toEqual(['masters', 'workers']);
  });

  test("instances: the masters' and workers' ASGs tag them kubernetes.io/cluster/<environment> at launch, the bastion's not", () => {
    const asgTags = (address: string) =>
      Object.fromEntries(
        (
          (planned.get(address)?.tag ?? []) as { key: string; value: string; propagate_at_launch: boolean }[]
        ).map((t) => [t.key, t.propagate_at_launch ? t.value : `(not propagated) ${t.value}`]),
      );
    expect(asgTags('module.workers.aws_autoscaling_group.this')[cluster]).toBe('owned');
    for (const m of ['etcd-0', 'etcd-1', 'etcd-2'])
      expect(asgTags(`module.masters.aws_autoscaling_group.this["${m}"]`)[cluster]).toBe('owned');
    expect(asgTags('module.bastion.aws_autoscaling_group.this')).not.toHaveProperty([cluster]);
  });

  interface Statement {
    Sid: string;
    Effect: string;
    Action: string | string[];
    Resource: string | string[];
    Condition?: Record<string, Record<string, string | string[]>>;
  }
  const statementsOf = (address: string): Statement[] => {
    const policy = planned.get(address)?.policy;
    expect([address, typeof policy]).toEqual([address, 'string']);
    return (JSON.parse(policy as string) as { Statement: Statement[] }).Statement;
  };
  const list = (v: string | string[] | undefined) => (v === undefined ? [] : [v].flat());

  interface Fixture {
    components: Record<
      string,
      {
        role: string;
        upstream: string[];
        expanded?: Record<string, string[]>;
        omitted: Record<string, string>;
      }
    >;
  }
  const fixture = JSON.parse(
    readFileSync(path.join(root, 'test', 'fixtures', 'iam', 'upstream-policies.json'), 'utf8'),
  ) as Fixture;

  test("each role gets exactly the actions of its components' upstream policies, less what is left out with a reason", () => {
    for (const role of ['masters', 'workers']) {
      const expected = new Set<string>();
      for (const c of Object.values(fixture.components).filter((c) => c.role === role)) {
        for (const [action, reason] of Object.entries(c.omitted)) {
          expect(c.upstream).toContain(action); // an omission names an upstream action
          expect(reason.length).toBeGreaterThan(10);
        }
        for (const a of c.upstream) {
          if (a in c.omitted) continue;
          for (const x of c.expanded?.[a] ?? [a]) expected.add(x);
        }
      }
      const actual = new Set(
        statementsOf(`module.iam.aws_iam_role_policy.components["${role}"]`).flatMap((s) => list(s.Action)),
      );
      expect([role, [...actual].sort()]).toEqual([role, [...expected].sort()]);
    }
    // the bastion gets no component policy at all
    expect(planned.has('module.iam.aws_iam_role_policy.components["bastion"]')).toBe(false);
  });

  test('no wildcard action in any role policy; Allow only', () => {
    const policies = [...planned.keys()].filter((a) => a.startsWith('module.iam.aws_iam_role_policy.'));
    // layers × 3, components × 2, and any other role policy (e.g. the masters' etcd backups)
    expect(policies.length).toBeGreaterThanOrEqual(5);
    for (const address of policies) {
      for (const s of statementsOf(address)) {
        expect([address, s.Sid, s.Effect]).toEqual([address, s.Sid, 'Allow']);
        for (const a of list(s.Action))
          expect([address, s.Sid, a]).toEqual([address, s.Sid, expect.not.stringMatching(/[*?]/)]);
      }
    }
    // the policy rule (src/policy) agrees on the real plan, and is not vacuous
    const rule = RULES.find((r) => r.id === 'kp-iam-no-wildcard-action')!;
    const view = planView(planJson);
    expect(view.resources.filter((r) => r.type === 'aws_iam_role_policy')).toHaveLength(policies.length);
    expect(rule.check({ plan: view } as Parameters<typeof rule.check>[0])).toEqual([]);
    expect(wildcardActions({ Statement: [{ Effect: 'Allow', Action: ['kms:ReEncrypt*'] }] })).toEqual([
      'kms:ReEncrypt*',
    ]);
  });

  test("the EBS CSI controller's key use goes through EC2 only; ECR pulls only from the environment's account", () => {
    const masters = statementsOf('module.iam.aws_iam_role_policy.components["masters"]');
    const kms = masters.filter(
      (s) => list(s.Action).some((a) => a.startsWith('kms:')) && s.Sid.startsWith('EbsCsi'),
    );
    expect(kms.map((s) => s.Sid).sort()).toEqual(['EbsCsiVolumeKeyGrants', 'EbsCsiVolumeKeyViaEc2']);
    for (const s of kms) {
      expect(list(s.Resource)).toEqual([kmsKeyArn]);
      expect(list(s.Condition?.StringEquals?.['kms:ViaService'])).toEqual([`ec2.${region}.amazonaws.com`]);
    }
    const create = masters.find((s) => s.Sid === 'EbsCsiCreateClusterVolume')!;
    expect(create.Condition?.StringLike?.['aws:RequestTag/ebs.csi.aws.com/cluster']).toBe('true');
    const del = masters.find((s) => s.Sid === 'EbsCsiDeleteClusterVolume')!;
    expect(del.Condition?.StringLike?.['ec2:ResourceTag/ebs.csi.aws.com/cluster']).toBe('true');
    const workers = statementsOf('module.iam.aws_iam_role_policy.components["workers"]');
    const pull = workers.find((s) => s.Sid === 'EcrPullOwnAccount')!;
    const account = kmsKeyArn.split(':')[4];
    expect(list(pull.Resource)).toEqual([`arn:aws:ecr:*:${account}:repository/*`]);
  });
});
