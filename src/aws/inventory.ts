import type { AwsClients } from './clients.js';
import { autoScalingSdk, ec2Sdk, elbv2Sdk } from './clients.js';

/**
 * The environment's inventory as the operator sees it (the original tool's
 * `aws-instances`), filtered by the Environment tag that every resource carries.
 */

export interface InstanceRow {
  name: string;
  privateIp: string | null;
  publicIp: string | null;
  instanceId: string;
  state: string;
  availabilityZone: string;
  /** the Layer tag: secure, compute or bastion */
  layer: string | null;
}

/**
 * Lists the environment's instances (all pages), sorted by name then private IP.
 * Terminated instances are left out.
 */
export async function listInstances(aws: AwsClients, environment: string): Promise<InstanceRow[]> {
  const { paginateDescribeInstances } = await ec2Sdk();
  const rows: InstanceRow[] = [];
  const pages = paginateDescribeInstances(
    { client: await aws.ec2() },
    {
      Filters: [
        { Name: 'tag:Environment', Values: [environment] },
        {
          Name: 'instance-state-name',
          Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'],
        },
      ],
    },
  );
  for await (const page of pages) {
    for (const r of page.Reservations ?? []) {
      for (const i of r.Instances ?? []) {
        const tag = (k: string) => i.Tags?.find((t) => t.Key === k)?.Value ?? null;
        rows.push({
          name: tag('Name') ?? '',
          privateIp: i.PrivateIpAddress ?? null,
          publicIp: i.PublicIpAddress ?? null,
          instanceId: i.InstanceId!,
          state: i.State?.Name ?? 'unknown',
          availabilityZone: i.Placement?.AvailabilityZone ?? '',
          layer: tag('Layer'),
        });
      }
    }
  }
  return rows.sort(
    (a, b) => a.name.localeCompare(b.name) || (a.privateIp ?? '').localeCompare(b.privateIp ?? ''),
  );
}

export interface LoadBalancerRow {
  name: string;
  dnsName: string;
  type: string;
  scheme: string;
  state: string;
}

/** The environment's load balancers (ELBv2: network/application), by their Environment tag. */
export async function listLoadBalancers(aws: AwsClients, environment: string): Promise<LoadBalancerRow[]> {
  const elb = await elbv2Sdk();
  const client = await aws.elbv2();
  {
    const all: import('@aws-sdk/client-elastic-load-balancing-v2').LoadBalancer[] = [];
    for await (const page of elb.paginateDescribeLoadBalancers({ client }, {}))
      all.push(...(page.LoadBalancers ?? []));
    const rows: LoadBalancerRow[] = [];
    // DescribeTags takes at most 20 ARNs per call
    for (let i = 0; i < all.length; i += 20) {
      const batch = all.slice(i, i + 20);
      const tags = await client.send(
        new elb.DescribeTagsCommand({ ResourceArns: batch.map((l) => l.LoadBalancerArn!) }),
      );
      for (const lb of batch) {
        const t = tags.TagDescriptions?.find((d) => d.ResourceArn === lb.LoadBalancerArn)?.Tags ?? [];
        if (!t.some((x) => x.Key === 'Environment' && x.Value === environment)) continue;
        rows.push({
          name: lb.LoadBalancerName ?? '',
          dnsName: lb.DNSName ?? '',
          type: lb.Type ?? '',
          scheme: lb.Scheme ?? '',
          state: lb.State?.Code ?? '',
        });
      }
    }
    return rows.sort((a, b) => a.name.localeCompare(b.name));
  }
}

export interface VolumeRow {
  name: string;
  volumeId: string;
  sizeGiB: number;
  type: string;
  state: string;
  availabilityZone: string;
  attachedTo: string | null;
  encrypted: boolean;
}

/** The environment's EBS volumes (etcd data volumes and root volumes tagged with the environment). */
export async function listVolumes(aws: AwsClients, environment: string): Promise<VolumeRow[]> {
  const { paginateDescribeVolumes } = await ec2Sdk();
  const rows: VolumeRow[] = [];
  for await (const page of paginateDescribeVolumes(
    { client: await aws.ec2() },
    { Filters: [{ Name: 'tag:Environment', Values: [environment] }] },
  )) {
    for (const v of page.Volumes ?? []) {
      rows.push({
        name: v.Tags?.find((t) => t.Key === 'Name')?.Value ?? '',
        volumeId: v.VolumeId!,
        sizeGiB: v.Size ?? 0,
        type: v.VolumeType ?? '',
        state: v.State ?? '',
        availabilityZone: v.AvailabilityZone ?? '',
        attachedTo: v.Attachments?.[0]?.InstanceId ?? null,
        encrypted: Boolean(v.Encrypted),
      });
    }
  }
  return rows.sort((a, b) => a.name.localeCompare(b.name) || a.volumeId.localeCompare(b.volumeId));
}

export interface AsgRow {
  name: string;
  layer: string | null;
  min: number;
  max: number;
  desired: number;
  instances: string[];
}

/** The environment's Auto Scaling groups (tag Environment), with their Layer tag. */
export async function listAsgs(aws: AwsClients, environment: string): Promise<AsgRow[]> {
  const { paginateDescribeAutoScalingGroups } = await autoScalingSdk();
  const rows: AsgRow[] = [];
  for await (const page of paginateDescribeAutoScalingGroups(
    { client: await aws.autoscaling() },
    { Filters: [{ Name: 'tag:Environment', Values: [environment] }] },
  )) {
    for (const g of page.AutoScalingGroups ?? []) {
      rows.push({
        name: g.AutoScalingGroupName!,
        layer: g.Tags?.find((t) => t.Key === 'Layer')?.Value ?? null,
        min: g.MinSize ?? 0,
        max: g.MaxSize ?? 0,
        desired: g.DesiredCapacity ?? 0,
        instances: (g.Instances ?? []).map((i) => i.InstanceId!),
      });
    }
  }
  return rows.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Sets an ASG's desired capacity (SetDesiredCapacity, HonorCooldown false: the operator asked).
 * @throws the SDK's error (e.g. ValidationError outside the group's bounds)
 */
export async function setDesiredCapacity(aws: AwsClients, asgName: string, desired: number): Promise<void> {
  const { SetDesiredCapacityCommand } = await autoScalingSdk();
  await (await aws.autoscaling()).send(
    new SetDesiredCapacityCommand({
      AutoScalingGroupName: asgName,
      DesiredCapacity: desired,
      HonorCooldown: false,
    }),
  );
}

/** Terminates instances (TerminateInstances); their ASGs replace them. */
export async function terminateInstances(aws: AwsClients, instanceIds: string[]): Promise<void> {
  const { TerminateInstancesCommand } = await ec2Sdk();
  await (await aws.ec2()).send(new TerminateInstancesCommand({ InstanceIds: instanceIds }));
}

/**
 * An instance's serial console output, decoded (EC2 GetConsoleOutput: base64, the most recent
 * 64 KB; https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html).
 * @returns '' when there is none yet
 */
export async function consoleOutput(aws: AwsClients, instanceId: string): Promise<string> {
  const { GetConsoleOutputCommand } = await ec2Sdk();
  const r = await (await aws.ec2()).send(new GetConsoleOutputCommand({ InstanceId: instanceId }));
  return r.Output ? Buffer.from(r.Output, 'base64').toString('utf8') : '';
}
