import { listAsgs, listInstances } from '../aws/inventory.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { confirmOrAbort, typeBackOrAbort } from '../prompt.js';
import { openEnvironment } from './context.js';

/** Options of `scale-compute`. */
export interface ScaleComputeOptions {
  env: string;
  local?: boolean;
  /** desired number of workers (text as typed; validated here) */
  count: string;
  yes?: boolean;
}

/**
 * Sets the desired capacity of the environment's worker ASG (the one tagged Layer=compute;
 * the original tool scaled the wrong group). The count must be a whole number within the
 * ASG's bounds. The environment file's WORKER_COUNT is what the next `run` applies, so the
 * command reminds the operator to change it too.
 * @returns 0
 * @throws UserError (2) for a bad count or when the environment has not exactly one worker ASG
 */
export async function scaleComputeCommand(o: ScaleComputeOptions): Promise<number> {
  if (!/^\d+$/.test(o.count))
    throw new UserError(`scale-compute ${o.count}: the count must be a whole number`);
  const n = Number(o.count);
  const ctx = await openEnvironment({ env: o.env, local: o.local });
  try {
    const workers = (await listAsgs(ctx.aws, ctx.cfg.name)).filter((g) => g.layer === 'compute');
    if (workers.length !== 1) {
      throw new UserError(
        `expected one worker ASG (tag Layer=compute) in ${ctx.cfg.name}, found ${workers.length}`,
        {
          hint: 'has `run` created the environment?',
        },
      );
    }
    const asg = workers[0]!;
    if (n < asg.min || n > asg.max) {
      throw new UserError(
        `scale-compute ${n}: ${asg.name} allows ${asg.min} to ${asg.max} workers (WORKER_MAX in ${ctx.cfg.file})`,
      );
    }
    if (n === asg.desired) {
      log.info(`${asg.name} already wants ${n} workers`);
      return 0;
    }
    if (!o.yes) {
      await confirmOrAbort(
        `scale ${asg.name} from ${asg.desired} to ${n} workers?`,
        `non-interactively: scale-compute -e ${ctx.cfg.name} ${n} --yes`,
      );
    }
    const { SetDesiredCapacityCommand } = await import('@aws-sdk/client-auto-scaling');
    await (await ctx.aws.autoscaling()).send(
      new SetDesiredCapacityCommand({
        AutoScalingGroupName: asg.name,
        DesiredCapacity: n,
        HonorCooldown: false,
      }),
    );
    log.info(`${asg.name}: desired capacity ${asg.desired} → ${n}`);
    if (n !== ctx.cfg.workers.count) {
      log.warn(
        `WORKER_COUNT in ${ctx.cfg.file} is ${ctx.cfg.workers.count}: set it to ${n}, or the next run scales back`,
      );
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

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
 */
export async function terminateLayerCommand(o: TerminateLayerOptions): Promise<number> {
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
