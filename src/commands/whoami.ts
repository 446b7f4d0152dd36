import type { CommandContext } from '../context/command.js';

/** Options of `whoami`. */
export interface WhoamiOptions {
  env: string;
  local?: boolean;
  /** print JSON instead of `<account> <arn>` */
  json?: boolean;
}

/**
 * `whoami`: the AWS identity the environment's commands act as (the shell shows it before
 * anything mutates). Prints `<account> <arn>` on stdout, or JSON.
 * @returns 0
 * @throws UserError (2) without usable credentials or with another account's credentials
 */
export async function whoamiCommand(o: WhoamiOptions, context: CommandContext): Promise<number> {
  const ctx = await context.openEnvironment({ env: o.env, local: o.local, quiet: true });
  try {
    const { account, arn } = ctx.identity;
    context.stdout.write(
      o.json ? `${JSON.stringify({ environment: ctx.cfg.name, account, arn })}\n` : `${account} ${arn}\n`,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}
