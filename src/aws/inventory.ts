import type { AwsClients } from './clients.js';

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
  const { paginateDescribeInstances } = await import('@aws-sdk/client-ec2');
  const rows: InstanceRow[] = [];
  const pages = paginateDescribeInstances(
    { client: await aws.ec2() },
    {
      Filters: [
        { Name: 'tag:Environment', Values: [environment] },
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] },
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
  return rows.sort((a, b) => a.name.localeCompare(b.name) || (a.privateIp ?? '').localeCompare(b.privateIp ?? ''));
}
