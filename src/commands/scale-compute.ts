import { listAsgs, setDesiredCapacity } from '../aws/inventory.js';
import type { CommandContext } from '../context/command.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { confirmOrAbort } from '../prompt.js';

/** Options of `scale-compute`. */
export interface ScaleComputeOptions {
  env: string;
  local?: boolean;
  /** desired number of workers (a whole number: commander's argParser checked it) */
  count: number;
  yes?: boolean;
}

/**
 * Sets the desired capacity of the environment's worker ASG (the one tagged Layer=compute;
 * the original tool scaled the wrong group). The count must be a whole number within the
 * ASG's bounds. The environment file's WORKER_COUNT is what the next `run` applies, so the
 * command reminds the operator to change it too.
 * @returns 0
 * @throws UserError (2) for a count outside the ASG's bounds or when the environment has not exactly one worker ASG
 */
export async function scaleComputeCommand(o: ScaleComputeOptions, context: CommandContext): Promise<number> {
  const n = o.count;
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
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
    await setDesiredCapacity(ctx.aws, asg.name, n);
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
