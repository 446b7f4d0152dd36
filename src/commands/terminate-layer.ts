import { listInstances } from '../aws/inventory.js';
import { openEnvironment } from '../context/environment.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { confirmOrAbort, typeBackOrAbort } from '../prompt.js';

/** Options of `terminate-layer`. */
export interface TerminateLayerOptions {
  env: string;
  local?: boolean;
  layer: 'secure' | 'compute' | 'bastion';
  yes?: boolean;
  /** with --yes outside play-* environments: the environment name, typed back */
  confirm?: string;
}

/**
 * Terminates every running instance of a layer; their ASGs replace them with instances
 * from the current launch template (a rolling replacement is kinder to etcd: prefer one
 * master at a time in production). Asks once, and outside play-* environments a second
 * time with the environment name typed back (`--yes --confirm ENV` for scripts).
 * @returns 0
 * @throws UserError (2) when --confirm names another environment (in playgrounds too)
 */
export async function terminateLayerCommand(o: TerminateLayerOptions): Promise<number> {
  // a --confirm naming another environment is an error everywhere, before any AWS call
  if (o.confirm !== undefined && o.confirm !== o.env) {
    throw new UserError(
      `--confirm ${o.confirm} does not match the environment ${o.env}; nothing was terminated`,
    );
  }
  const ctx = await openEnvironment({ env: o.env, local: o.local });
  try {
    const env = ctx.cfg.name;
    const targets = (await listInstances(ctx.aws, env)).filter(
      (i) => i.layer === o.layer && i.state !== 'terminated',
    );
    if (targets.length === 0) {
      log.info(`no ${o.layer} instances in ${env}`);
      return 0;
    }
    for (const t of targets)
      process.stdout.write(`${t.instanceId}\t${t.name}\t${t.privateIp ?? '-'}\t${t.availabilityZone}\n`);
    const shared = !env.startsWith('play-');
    if (o.yes) {
      if (shared && o.confirm !== env) {
        throw new UserError(`terminate-layer in ${env} with --yes also needs --confirm ${env}`);
      }
    } else {
      const hint = `non-interactively: terminate-layer -e ${env} ${o.layer} --yes${shared ? ` --confirm ${env}` : ''}`;
      await confirmOrAbort(`terminate these ${targets.length} ${o.layer} instances of ${env}?`, hint);
      if (shared)
        await typeBackOrAbort(`${env} is a shared environment: type its name to go ahead`, env, hint);
    }
    const { TerminateInstancesCommand } = await import('@aws-sdk/client-ec2');
    await (await ctx.aws.ec2()).send(
      new TerminateInstancesCommand({ InstanceIds: targets.map((t) => t.instanceId) }),
    );
    log.info(`terminated ${targets.length} ${o.layer} instances; their ASGs will replace them`);
    return 0;
  } finally {
    await ctx.close();
  }
}
