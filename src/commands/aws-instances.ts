import { listInstances } from '../aws/inventory.js';
import type { CommandContext } from '../context/command.js';
import { printRows } from '../table.js';

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
export async function awsInstancesCommand(o: InventoryOptions, context: CommandContext): Promise<number> {
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
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
      context.stdout,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}
