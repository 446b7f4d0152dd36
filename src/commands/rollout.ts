import type { CommandContext } from '../context/command.js';
import { secretStore } from '../context/environment.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { confirmOrAbort } from '../prompt.js';
import { abortRollout, describeRollout, driveRollout, readRollout, statusesOf } from '../secrets/rollout.js';
import { parseStatus } from '../secrets/status.js';

/** Options of `rollout`. */
export interface RolloutOptions {
  action: 'status' | 'resume' | 'abort';
  env: string;
  local?: boolean;
  /** @default secure */
  layer: string;
  /** resume: seconds each master may take to report healthy on the target @default 300 */
  timeout: string | number;
  yes?: boolean;
  json?: boolean;
}

/**
 * `rollout status`: the record and each master's position; `rollout resume`: promotes the
 * next master each time the last one reports healthy (etcd member healthy, API server
 * /readyz) on the target; `rollout abort`: every master returns to the previous generation.
 * @returns 0
 * @throws UserError (exit 2) without a rollout; PlatformError (exit 1) naming the master
 *   that failed its health gate; AbortError (exit 130) when abort is declined
 */
export async function rolloutCommand(o: RolloutOptions, context: CommandContext): Promise<number> {
  const timeoutS = Number(o.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 86_400) {
    throw new UserError(`--timeout ${o.timeout}: seconds between 0 and 86400`);
  }
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  try {
    const { store } = await secretStore(ctx);
    const cur = await readRollout(store, ctx.cfg.name, o.layer);
    if (!cur) throw new UserError(`layer ${o.layer} has no rollout record`);
    if (o.action === 'status') {
      if (o.json) context.stdout.write(`${JSON.stringify(cur.record, null, 2)}\n`);
      else
        context.stdout.write(
          `${describeRollout(cur.record, await statusesOf(store, o.layer, parseStatus)).join('\n')}\n`,
        );
      return 0;
    }
    if (o.action === 'abort') {
      if (!o.yes) {
        await confirmOrAbort(
          `abort the rollout of ${o.layer} generation ${cur.record.target.generation}? every master returns to generation ${cur.record.previous?.generation}`,
          'pass --yes to abort without asking',
        );
      }
      const r = await abortRollout(store, ctx.cfg.name, o.layer);
      log.info(
        `aborted: masters return to generation ${r.previous?.generation} (sync-status -e ${o.env} --layer ${o.layer})`,
      );
      return 0;
    }
    const done = await driveRollout(store, ctx.cfg.name, o.layer, {
      timeoutS,
      parse: parseStatus,
      log: (l) => log.info(l),
    });
    log.info(`rollout of ${o.layer} generation ${done.target.generation}: ${done.state}`);
    return 0;
  } finally {
    await ctx.close();
  }
}
