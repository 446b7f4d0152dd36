import { inspectBootstrap } from '../aws/bootstrap.js';
import type { CommandContext } from '../context/command.js';
import type { EnvContext } from '../context/environment.js';
import { platformTerraform } from '../context/terraform.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { confirmOrAbort, typeBackOrAbort } from '../prompt.js';

/** Options of `cleanup`. */
export interface CleanupOptions {
  env: string;
  local?: boolean;
  /** don't ask (needs --confirm ENV outside play-* environments) */
  yes?: boolean;
  /** the environment name, typed back, for scripts */
  confirm?: string;
  /** also delete the state bucket, the secrets bucket (every version) and schedule the KMS key's deletion */
  purge?: boolean;
}

/** What `cleanup` will ask for, decided before any work (pure). */
export interface CleanupGuard {
  /** play-* environments get a yes/no; others need the name typed back */
  shared: boolean;
  /** true when the flags alone authorise the destroy */
  preauthorised: boolean;
}

/**
 * Decides how `cleanup` must be confirmed, and fails at once when it cannot be: without a
 * TTY a prompt could never be answered, so instead of waiting the command stops before
 * touching anything (kops' habit).
 * @throws UserError (2) when --confirm names another environment, without a TTY and without
 *   --yes/--confirm, or with --purge without a TTY (purging is typed back, never scripted)
 */
export function cleanupGuard(
  env: string,
  o: Pick<CleanupOptions, 'yes' | 'confirm' | 'purge'>,
  tty: boolean,
): CleanupGuard {
  const shared = !env.startsWith('play-');
  if (o.confirm !== undefined && o.confirm !== env) {
    throw new UserError(`--confirm ${o.confirm} does not match the environment ${env}`);
  }
  if (o.purge && !tty) {
    throw new UserError(
      `cleanup --purge of ${env} asks for "purge ${env}" to be typed, but stdin is not a terminal; nothing was destroyed`,
      { hint: `purging has no non-interactive form: run it from a terminal, or drop --purge` },
    );
  }
  const preauthorised = Boolean(o.yes) && (!shared || o.confirm === env);
  if (!preauthorised && !tty) {
    throw new UserError(`cleanup of ${env} needs a confirmation, but stdin is not a terminal`, {
      hint: `for scripts: cleanup -e ${env} --yes --confirm ${env}`,
    });
  }
  if (o.yes && !preauthorised && shared) {
    throw new UserError(`cleanup of the shared environment ${env} with --yes also needs --confirm ${env}`);
  }
  return { shared, preauthorised };
}

/** Asks for `purge ENV` typed back. @throws AbortError (130) on anything else */
async function confirmPurge(
  names: { stateBucket: string; secretsBucket: string; kmsAlias: string },
  env: string,
): Promise<void> {
  log.warn(
    `--purge deletes s3://${names.stateBucket}, s3://${names.secretsBucket} (every version) and schedules ${names.kmsAlias} for deletion: the PKI and secrets of ${env} are lost`,
  );
  await typeBackOrAbort(
    `type "purge ${env}" to delete them`,
    `purge ${env}`,
    'purging has no non-interactive form',
  );
}

/**
 * `cleanup`: destroys what `run` created (terraform destroy), after printing the plan
 * and a confirmation: the environment name typed back (a yes/no for play-*), or
 * `--yes --confirm ENV` for scripts. Keeps the state bucket, the secrets bucket and the
 * KMS key unless `--purge` (which asks again), so the state still opens afterwards and a
 * later `run` rebuilds with the same PKI.
 * @returns 0
 */
export async function cleanupCommand(o: CleanupOptions, context: CommandContext): Promise<number> {
  const guard = cleanupGuard(o.env, o, Boolean(process.stdin.isTTY));
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  try {
    const env = ctx.cfg.name;
    // cleanup never creates: it reads what exists, and an environment without state has
    // nothing to destroy (no bucket, key or plan is made for it)
    const state = await inspectBootstrap(ctx.aws, ctx.names);
    const stateBucket = state.buckets.find((b) => b.role === 'state')!;
    const hasState = stateBucket.exists && (await stateObjectExists(ctx));
    if (!hasState) {
      const left = [
        ...state.buckets.filter((b) => b.exists).map((b) => `s3://${b.name}`),
        ...(state.key ? [ctx.names.kmsAlias] : []),
      ];
      log.step(
        `${env}: nothing to destroy (no Terraform state${left.length ? `; kept ${left.join(', ')}` : ''})`,
      );
      if (o.purge && left.length > 0) {
        await confirmPurge(ctx.names, env);
        const { purge } = await import('../aws/purge.js');
        await purge(ctx.aws, ctx.names);
      }
      return 0;
    }
    const kmsKeyArn =
      state.key?.arn ??
      `arn:aws:kms:${ctx.cfg.region}:${ctx.identity.account}:key/00000000-0000-0000-0000-000000000000`;
    const { tf, vars, planFile } = await platformTerraform(ctx, { kmsKeyArn, allowMissingSshKey: true });
    const summary = await tf.plan(vars, planFile, { destroy: true });
    const hint = `for scripts: cleanup -e ${env} --yes${guard.shared ? ` --confirm ${env}` : ''}`;
    if (summary.changes) {
      context.stdout.write(await tf.showPlan(planFile));
      log.step(
        `cleanup will destroy ${summary.destroy} resources of ${env} (account ${ctx.identity.account})`,
      );
      if (!guard.preauthorised) {
        if (guard.shared) await typeBackOrAbort(`type the environment name to destroy ${env}`, env, hint);
        else await confirmOrAbort(`destroy the playground ${env}?`, hint);
      }
      // every question is asked before the first change: a refused purge destroys nothing
      if (o.purge) await confirmPurge(ctx.names, env);
      await tf.apply(planFile);
      log.step(
        `${env}: destroyed; kept s3://${ctx.names.stateBucket}, s3://${ctx.names.secretsBucket} and ${ctx.names.kmsAlias}`,
      );
    } else {
      log.step(`${env}: nothing to destroy`);
    }
    if (o.purge) {
      if (!summary.changes) await confirmPurge(ctx.names, env);
      const { purge } = await import('../aws/purge.js');
      await purge(ctx.aws, ctx.names);
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

/** true when the environment's Terraform state object exists (HeadObject: a read). */
async function stateObjectExists(ctx: EnvContext): Promise<boolean> {
  const { objectExists } = await import('../aws/objects.js');
  return objectExists(ctx.aws, ctx.names.stateBucket, ctx.names.stateKey);
}
