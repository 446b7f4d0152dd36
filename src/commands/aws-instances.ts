import { listInstances } from '../aws/inventory.js';
import { printRows } from '../table.js';
import { openEnvironment } from './context.js';

/** Options of the inventory commands (`aws-instances`, `aws-elbs`, `aws-volumes`). */
export interface InventoryOptions {
  env: string;
  local?: boolean;
  /** print JSON (an array of rows) instead of a table */
  json?: boolean;
}

/**
 * Prints the environment's instances: Name, private IP, public IP, instance id, state,
 * AZ (the original tool's columns), or JSON.
 * @returns 0
 */
export async function awsInstancesCommand(o: InventoryOptions): Promise<number> {
  const ctx = await openEnvironment({ env: o.env, local: o.local });
  try {
    await printRows(
      await listInstances(ctx.aws, ctx.cfg.name),
      [
        { title: 'Name', cell: (r) => r.name },
        { title: 'Private IP', cell: (r) => r.privateIp },
        { title: 'Public IP', cell: (r) => r.publicIp },
        { title: 'Instance', cell: (r) => r.instanceId },
        { title: 'State', cell: (r) => r.state },
        { title: 'AZ', cell: (r) => r.availabilityZone },
      ],
      o.json,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}

/** Prints the environment's load balancers: name, DNS name, type, scheme, state (or JSON). */
export async function awsElbsCommand(o: InventoryOptions): Promise<number> {
  const { listLoadBalancers } = await import('../aws/inventory.js');
  const ctx = await openEnvironment({ env: o.env, local: o.local });
  try {
    await printRows(
      await listLoadBalancers(ctx.aws, ctx.cfg.name),
      [
        { title: 'Name', cell: (r) => r.name },
        { title: 'DNS name', cell: (r) => r.dnsName },
        { title: 'Type', cell: (r) => r.type },
        { title: 'Scheme', cell: (r) => r.scheme },
        { title: 'State', cell: (r) => r.state },
      ],
      o.json,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}

/** Prints the environment's EBS volumes: name, id, size, type, state, AZ, attachment (or JSON). */
export async function awsVolumesCommand(o: InventoryOptions): Promise<number> {
  const { listVolumes } = await import('../aws/inventory.js');
  const ctx = await openEnvironment({ env: o.env, local: o.local });
  try {
    await printRows(
      await listVolumes(ctx.aws, ctx.cfg.name),
      [
        { title: 'Name', cell: (r) => r.name },
        { title: 'Volume', cell: (r) => r.volumeId },
        { title: 'GiB', cell: (r) => r.sizeGiB },
        { title: 'Type', cell: (r) => r.type },
        { title: 'State', cell: (r) => r.state },
        { title: 'AZ', cell: (r) => r.availabilityZone },
        { title: 'Attached to', cell: (r) => r.attachedTo },
        { title: 'Encrypted', cell: (r) => r.encrypted },
      ],
      o.json,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}
