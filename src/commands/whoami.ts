import { openEnvironment } from '../context/environment.js';

/**
 * `whoami`: the AWS identity the environment's commands act as (the shell shows it before
 * anything mutates). Prints `<account> <arn>` on stdout, or JSON.
 * @returns 0
 * @throws UserError (2) without usable credentials or with another account's credentials
 */
export async function whoamiCommand(o: { env: string; local?: boolean; json?: boolean }): Promise<number> {
  const ctx = await openEnvironment({ env: o.env, local: o.local, quiet: true });
  try {
    const { account, arn } = ctx.identity;
    process.stdout.write(
      o.json ? `${JSON.stringify({ environment: ctx.cfg.name, account, arn })}\n` : `${account} ${arn}\n`,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}
