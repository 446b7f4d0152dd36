import { listVolumes } from '../aws/inventory.js';
import type { CommandContext } from '../context/command.js';
import { printRows } from '../table.js';
import type { InventoryOptions } from './aws-instances.js';

/** Prints the environment's EBS volumes: name, id, size, type, state, AZ, attachment (or JSON). */
export async function awsVolumesCommand(o: InventoryOptions, context: CommandContext): Promise<number> {
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
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
      context.stdout,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}
