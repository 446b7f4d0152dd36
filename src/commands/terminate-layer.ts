import { listInstances, terminateInstances } from '../aws/inventory.js';
import type { CommandContext } from '../context/command.js';
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
  /** `secure` only: take every master (every etcd member) down at once */
  allAtOnce?: boolean;
}

/**
 * The guard of `terminate-layer secure`, pure: terminating every master at once takes
 * every etcd member down together — quorum is lost until they come back (kops#2235). It
 * is refused unless `--all-at-once` is given, and then the environment name must be typed
 * back in every environment, playgrounds included (`--yes --confirm ENV` for scripts).
 * @returns whether the name must still be typed back at the prompt
 * @throws UserError (exit 2) naming `roll secure` as the safe way
 */
export function secureTerminateGuard(
  o: Pick<TerminateLayerOptions, 'layer' | 'allAtOnce' | 'yes' | 'confirm' | 'env'>,
): boolean {
  if (o.layer !== 'secure') {
    if (o.allAtOnce) throw new UserError('--all-at-once applies to terminate-layer secure only');
    return false;
  }
  if (!o.allAtOnce) {
    throw new UserError(
      `terminate-layer secure would terminate every master, and so every etcd member, at once: the cluster loses quorum; nothing was terminated`,
      {
        hint: `replace masters one at a time with quorum kept: roll -e ${o.env} secure; in an emergency: terminate-layer -e ${o.env} secure --all-at-once`,
      },
    );
  }
  if (o.yes && o.confirm !== o.env) {
    throw new UserError(
      `terminate-layer secure --all-at-once --yes also needs --confirm ${o.env}, in every environment`,
    );
  }
  return !o.yes;
}

/**
 * Terminates every running instance of a layer; their ASGs replace them with instances
 * from the current launch template (a rolling replacement is kinder to etcd: prefer one
 * master at a time in production). Asks once, and outside play-* environments a second
 * time with the environment name typed back (`--yes --confirm ENV` for scripts).
 * @returns 0
 * @throws UserError (2) when --confirm names another environment (in playgrounds too)
 */
export async function terminateLayerCommand(
  o: TerminateLayerOptions,
  context: CommandContext,
): Promise<number> {
  // a --confirm naming another environment is an error everywhere, before any AWS call
  if (o.confirm !== undefined && o.confirm !== o.env) {
    throw new UserError(
      `--confirm ${o.confirm} does not match the environment ${o.env}; nothing was terminated`,
    );
  }
  const typeBackSecure = secureTerminateGuard(o);
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
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
      context.stdout.write(`${t.instanceId}\t${t.name}\t${t.privateIp ?? '-'}\t${t.availabilityZone}\n`);
    const shared = !env.startsWith('play-');
    if (o.yes) {
      if (shared && o.confirm !== env) {
        throw new UserError(`terminate-layer in ${env} with --yes also needs --confirm ${env}`);
      }
    } else {
      const hint = `non-interactively: terminate-layer -e ${env} ${o.layer}${typeBackSecure ? ' --all-at-once' : ''} --yes${shared || typeBackSecure ? ` --confirm ${env}` : ''}`;
      await confirmOrAbort(`terminate these ${targets.length} ${o.layer} instances of ${env}?`, hint);
      if (shared || typeBackSecure)
        await typeBackOrAbort(
          typeBackSecure
            ? `every etcd member of ${env} goes down at once: type the environment name to go ahead`
            : `${env} is a shared environment: type its name to go ahead`,
          env,
          hint,
        );
    }
    await terminateInstances(
      ctx.aws,
      targets.map((t) => t.instanceId),
    );
    log.info(`terminated ${targets.length} ${o.layer} instances; their ASGs will replace them`);
    return 0;
  } finally {
    await ctx.close();
  }
}
