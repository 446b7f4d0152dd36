import type { AwsClients } from './clients.js';
import { autoScalingSdk, ec2Sdk } from './clients.js';

/**
 * The environment's fleet as a rolling replacement sees it: each instance with the launch
 * template version it was launched from, each ASG with the version it launches now, and
 * the calls a replacement makes (terminate without decrementing, ENI and volume states).
 *
 * The instance's launch template version is read from its `aws:ec2launchtemplate:version`
 * tag, which EC2 sets at launch (EC2 user guide "Tag your resources": tags with the aws:
 * prefix are set by AWS), not from DescribeAutoScalingGroups' Instances[].LaunchTemplate,
 * which the local AWS reports as the ASG's current version for every instance.
 */

/** An instance of one of the environment's ASGs. */
export interface FleetInstance {
  instanceId: string;
  name: string;
  /** Layer tag: secure, compute, bastion */
  layer: string | null;
  asg: string | null;
  state: string;
  privateIp: string | null;
  availabilityZone: string;
  imageId: string | null;
  /** from the aws:ec2launchtemplate:id tag */
  launchTemplateId: string | null;
  /** from the aws:ec2launchtemplate:version tag */
  launchTemplateVersion: number | null;
  /** EtcdMember tag (masters) */
  etcdMember: string | null;
  launchTime: Date | null;
}

/** An ASG with the launch template version it launches now. */
export interface FleetAsg {
  name: string;
  layer: string | null;
  desired: number;
  launchTemplateId: string | null;
  /** the version number, with $Latest/$Default resolved */
  launchTemplateVersion: number | null;
  /** the AMI of that version */
  imageId: string | null;
  /** the ASG's instances and their lifecycle states (InService, Pending, Terminating...) */
  instances: { instanceId: string; lifecycle: string }[];
}

/** Instances of the environment (every state but terminated), with launch template tags. */
export async function describeFleetInstances(aws: AwsClients, environment: string): Promise<FleetInstance[]> {
  const { paginateDescribeInstances } = await ec2Sdk();
  const out: FleetInstance[] = [];
  for await (const page of paginateDescribeInstances(
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
  )) {
    for (const r of page.Reservations ?? []) {
      for (const i of r.Instances ?? []) {
        const tag = (k: string) => i.Tags?.find((t) => t.Key === k)?.Value ?? null;
        const v = tag('aws:ec2launchtemplate:version');
        out.push({
          instanceId: i.InstanceId!,
          name: tag('Name') ?? '',
          layer: tag('Layer'),
          asg: tag('aws:autoscaling:groupName'),
          state: i.State?.Name ?? 'unknown',
          privateIp: i.PrivateIpAddress ?? null,
          availabilityZone: i.Placement?.AvailabilityZone ?? '',
          imageId: i.ImageId ?? null,
          launchTemplateId: tag('aws:ec2launchtemplate:id'),
          launchTemplateVersion: v && /^\d+$/.test(v) ? Number(v) : null,
          etcdMember: tag('EtcdMember'),
          launchTime: i.LaunchTime ?? null,
        });
      }
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.instanceId.localeCompare(b.instanceId));
}

/**
 * The environment's ASGs with their launch template version resolved ($Latest and
 * $Default through DescribeLaunchTemplates) and that version's AMI
 * (DescribeLaunchTemplateVersions).
 */
export async function describeFleetAsgs(aws: AwsClients, environment: string): Promise<FleetAsg[]> {
  const asgSdk = await autoScalingSdk();
  const ec2Pkg = await ec2Sdk();
  const ec2 = await aws.ec2();
  const out: FleetAsg[] = [];
  for await (const page of asgSdk.paginateDescribeAutoScalingGroups(
    { client: await aws.autoscaling() },
    { Filters: [{ Name: 'tag:Environment', Values: [environment] }] },
  )) {
    for (const g of page.AutoScalingGroups ?? []) {
      const spec = g.LaunchTemplate ?? g.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
      let id = spec?.LaunchTemplateId ?? null;
      let version: number | null = null;
      let imageId: string | null = null;
      if (spec && (spec.LaunchTemplateId || spec.LaunchTemplateName)) {
        const lt = (
          await ec2.send(
            new ec2Pkg.DescribeLaunchTemplatesCommand(
              spec.LaunchTemplateId
                ? { LaunchTemplateIds: [spec.LaunchTemplateId] }
                : { LaunchTemplateNames: [spec.LaunchTemplateName!] },
            ),
          )
        ).LaunchTemplates?.[0];
        id = lt?.LaunchTemplateId ?? id;
        const v = spec.Version ?? '$Default';
        version =
          v === '$Latest'
            ? (lt?.LatestVersionNumber ?? null)
            : v === '$Default'
              ? (lt?.DefaultVersionNumber ?? null)
              : Number(v);
        if (id && version !== null) {
          const d = await ec2.send(
            new ec2Pkg.DescribeLaunchTemplateVersionsCommand({
              LaunchTemplateId: id,
              Versions: [String(version)],
            }),
          );
          imageId = d.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId ?? null;
        }
      }
      out.push({
        name: g.AutoScalingGroupName!,
        layer: g.Tags?.find((t) => t.Key === 'Layer')?.Value ?? null,
        desired: g.DesiredCapacity ?? 0,
        launchTemplateId: id,
        launchTemplateVersion: version,
        imageId,
        instances: (g.Instances ?? []).map((i) => ({
          instanceId: i.InstanceId!,
          lifecycle: i.LifecycleState ?? '',
        })),
      });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Terminates an instance of an ASG without decrementing its desired capacity, so the ASG
 * launches a replacement (AutoScaling TerminateInstanceInAutoScalingGroup,
 * ShouldDecrementDesiredCapacity=false).
 */
export async function terminateInAsg(aws: AwsClients, instanceId: string): Promise<void> {
  const { TerminateInstanceInAutoScalingGroupCommand } = await autoScalingSdk();
  await (await aws.autoscaling()).send(
    new TerminateInstanceInAutoScalingGroupCommand({
      InstanceId: instanceId,
      ShouldDecrementDesiredCapacity: false,
    }),
  );
}

/** The state of one instance, `terminated` included (DescribeInstances by id); null when unknown. */
export async function instanceState(aws: AwsClients, instanceId: string): Promise<string | null> {
  const { DescribeInstancesCommand } = await ec2Sdk();
  try {
    const r = await (await aws.ec2()).send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return r.Reservations?.[0]?.Instances?.[0]?.State?.Name ?? null;
  } catch (e) {
    if ((e as Error).name === 'InvalidInstanceID.NotFound') return null;
    throw e;
  }
}

/** An etcd member's ENI and EBS volume (tag EtcdMember), their states and attachments. */
export interface MemberResources {
  member: string;
  eni: { id: string; status: string; attachedTo: string | null } | null;
  volume: { id: string; state: string; attachedTo: string | null } | null;
}

/** Reads the ENI and volume of etcd member `member` (tags Environment and EtcdMember). */
export async function memberResources(
  aws: AwsClients,
  environment: string,
  member: string,
): Promise<MemberResources> {
  const { DescribeNetworkInterfacesCommand, DescribeVolumesCommand } = await ec2Sdk();
  const ec2 = await aws.ec2();
  const filters = [
    { Name: 'tag:Environment', Values: [environment] },
    { Name: 'tag:EtcdMember', Values: [member] },
  ];
  const eni = (await ec2.send(new DescribeNetworkInterfacesCommand({ Filters: filters })))
    .NetworkInterfaces?.[0];
  const vol = (await ec2.send(new DescribeVolumesCommand({ Filters: filters }))).Volumes?.[0];
  return {
    member,
    eni: eni
      ? {
          id: eni.NetworkInterfaceId!,
          status: eni.Status ?? '',
          attachedTo: eni.Attachment?.InstanceId ?? null,
        }
      : null,
    volume: vol
      ? { id: vol.VolumeId!, state: vol.State ?? '', attachedTo: vol.Attachments?.[0]?.InstanceId ?? null }
      : null,
  };
}
