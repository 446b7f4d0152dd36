import {
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateLaunchTemplateCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import type { AwsClients } from '../../src/aws/clients.js';
import { type InstanceRow, listInstances } from '../../src/aws/inventory.js';
import type { LocalHealth, NodeStatus } from '../../src/secrets/status.js';
import type { SecretStore } from '../../src/secrets/store.js';
import type { KubeDouble } from './kube-api-double.js';

/**
 * Fake-but-running nodes for day-2 tests: what the machines of a cluster would do, played
 * against the local AWS and the Kubernetes API double (no VM can boot here).
 *
 * Every tick the fleet lists the environment's instances (real moto instances of real
 * ASGs) and, for each running master or worker, does what its kubelet and agent would:
 * registers a Node (named `ip-<a-b-c-d>`, InternalIP = the instance's private IP) once
 * `joinDelayMs` passed since it was first seen, runs the four control-plane mirror pods on
 * masters, and on masters writes the agent's status record (`status/secure/<instance id>`)
 * at the secure layer's current generation with the local etcd member's and API server's
 * health (the leader: the oldest master). Instances that are gone lose their Node and pods.
 * `etcdDown` makes a master report its member unhealthy.
 */

export interface FakeFleet {
  /** instance ids whose etcd member reports unhealthy */
  etcdDown: Set<string>;
  /** one tick now */
  tick(): Promise<void>;
  stop(): Promise<void>;
  /** Node name for an instance */
  nodeName(i: Pick<InstanceRow, 'privateIp'>): string;
  /** the kubelet version Nodes registering from now on report (what their launch template installs) */
  setKubeletVersion(v: string): void;
}

export function nodeNameFor(ip: string | null): string {
  return `ip-${(ip ?? '0.0.0.0').replaceAll('.', '-')}`;
}

export function startFakeFleet(o: {
  aws: AwsClients;
  environment: string;
  store: SecretStore;
  kube: KubeDouble;
  intervalMs?: number;
  joinDelayMs?: number;
  kubernetesVersion?: string;
  /** false: the masters run real agents (runAgent) that write their own status records @default true */
  masterStatus?: boolean;
  /**
   * the image a master's control-plane mirror pod runs now, e.g. read from the manifests its
   * agent applied (undefined: keep the pod's image); refreshed every tick
   */
  imageOf?: (instanceId: string, component: string) => Promise<string | undefined>;
}): FakeFleet {
  const firstSeen = new Map<string, number>();
  let version = o.kubernetesVersion ?? 'v1.34.1';
  const etcdDown = new Set<string>();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();

  const tick = async () => {
    const instances = await listInstances(o.aws, o.environment);
    const snap = await o.store.readIndex('secure');
    const generation = snap && snap !== 'not-modified' ? snap.index.generation : 0;
    const live = instances.filter(
      (i) => i.state === 'running' && (i.layer === 'secure' || i.layer === 'compute'),
    );
    const liveNames = new Set(live.map((i) => nodeNameFor(i.privateIp)));
    for (const name of [...o.kube.nodes.keys()]) {
      if (!liveNames.has(name)) {
        o.kube.nodes.delete(name);
        o.kube.pods = o.kube.pods.filter((p) => p.nodeName !== name);
      }
    }
    const masters = live
      .filter((i) => i.layer === 'secure')
      .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
    for (const i of live) {
      const seen = firstSeen.get(i.instanceId) ?? Date.now();
      firstSeen.set(i.instanceId, seen);
      if (Date.now() - seen < (o.joinDelayMs ?? 0)) continue;
      const name = nodeNameFor(i.privateIp);
      if (!o.kube.nodes.has(name)) {
        o.kube.nodes.set(name, { name, internalIp: i.privateIp ?? '', kubeletVersion: version, labels: {} });
        if (i.layer === 'secure') {
          for (const c of ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'etcd']) {
            o.kube.pods.push({
              namespace: 'kube-system',
              name: `${c}-${name}`,
              nodeName: name,
              mirror: true,
              priorityClassName: 'system-node-critical',
              labels: { component: c, tier: 'control-plane' },
              image: c === 'etcd' ? 'registry.k8s.io/etcd:3.6.5-0' : `registry.k8s.io/${c}:${version}`,
            });
          }
        }
      }
    }
    if (o.imageOf) {
      for (const m of masters) {
        const name = nodeNameFor(m.privateIp);
        for (const p of o.kube.pods.filter((x) => x.nodeName === name && x.mirror)) {
          const image = await o.imageOf(m.instanceId, p.labels?.component ?? '');
          if (image) p.image = image;
        }
      }
    }
    const now = new Date().toISOString();
    for (const m of o.masterStatus === false ? [] : masters) {
      if (Date.now() - (firstSeen.get(m.instanceId) ?? 0) < (o.joinDelayMs ?? 0)) continue;
      const down = etcdDown.has(m.instanceId);
      const health: LocalHealth = {
        etcd: {
          checkedAt: now,
          healthy: !down,
          reason: down ? 'etcd metrics listener http://127.0.0.1:2381 unreachable: connect ECONNREFUSED' : '',
          hasLeader: down ? null : true,
          isLeader: down ? null : m === masters.find((x) => !etcdDown.has(x.instanceId)),
          version: down ? null : '3.6.5',
        },
        apiserver: {
          checkedAt: now,
          ready: !down,
          detail: down ? 'HTTP 500: [-]etcd failed: reason withheld' : '',
        },
      };
      const status: NodeStatus = {
        node: m.instanceId,
        layer: 'secure',
        generation,
        indexDigest: null,
        appliedAt: now,
        heartbeatAt: now,
        error: null,
        fileErrors: [],
        health,
      };
      await o.store.putStatus('secure', m.instanceId, status);
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const loop = () => {
    if (stopped) return;
    running = tick()
      .catch(() => {})
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, o.intervalMs ?? 300);
      });
  };
  loop();
  return {
    etcdDown,
    tick,
    nodeName: (i) => nodeNameFor(i.privateIp),
    setKubeletVersion: (v) => {
      version = v;
    },
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/**
 * A minimal environment in the local AWS without Terraform: a VPC and subnet, an AMI, a
 * launch template and one ASG per given layer (tags Environment, Layer, Name propagated to
 * the instances, as the platform's ASGs do). moto launches the instances at once.
 * @returns the ASG names by layer
 */
export async function createFleetAsgs(
  aws: AwsClients,
  environment: string,
  layers: { layer: string; desired: number }[],
): Promise<Record<string, string>> {
  const ec2 = await aws.ec2();
  const asg = await aws.autoscaling();
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.80.0.0/16' }));
  const subnet = await ec2.send(
    new CreateSubnetCommand({
      VpcId: vpc.Vpc!.VpcId!,
      CidrBlock: '10.80.10.0/24',
      AvailabilityZone: 'eu-west-1a',
    }),
  );
  const image = await ec2.send(
    new RegisterImageCommand({
      Name: `${environment}-node`,
      Architecture: 'x86_64',
      RootDeviceName: '/dev/sda1',
      VirtualizationType: 'hvm',
      BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 8 } }],
    }),
  );
  const out: Record<string, string> = {};
  for (const { layer, desired } of layers) {
    const lt = await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: `${environment}-${layer}`,
        LaunchTemplateData: { ImageId: image.ImageId!, InstanceType: 't3.medium' },
      }),
    );
    const name = `${environment}-${layer}`;
    await asg.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: name,
        MinSize: 0,
        MaxSize: desired + 1,
        DesiredCapacity: desired,
        VPCZoneIdentifier: subnet.Subnet!.SubnetId!,
        LaunchTemplate: { LaunchTemplateId: lt.LaunchTemplate!.LaunchTemplateId!, Version: '$Latest' },
        Tags: [
          { Key: 'Environment', Value: environment, PropagateAtLaunch: true },
          { Key: 'Layer', Value: layer, PropagateAtLaunch: true },
          { Key: 'Name', Value: name, PropagateAtLaunch: true },
        ],
      }),
    );
    out[layer] = name;
  }
  await asg.send(new DescribeAutoScalingGroupsCommand({}));
  return out;
}
