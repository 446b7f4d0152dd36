import { listLoadBalancers } from '../aws/inventory.js';
import type { CommandContext } from '../context/command.js';
import { printRows } from '../table.js';
import type { InventoryOptions } from './aws-instances.js';

/** Prints the environment's load balancers: name, DNS name, type, scheme, state (or JSON). */
export async function awsElbsCommand(o: InventoryOptions, context: CommandContext): Promise<number> {
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
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
      context.stdout,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}
