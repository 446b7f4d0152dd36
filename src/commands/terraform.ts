import { findKmsKeyArn } from '../aws/bootstrap.js';
import type { CommandContext } from '../context/command.js';
import { platformTerraform } from '../context/terraform.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';

/** Options of `terraform`. */
export interface TerraformOptions {
  env: string;
  local?: boolean;
  /** terraform's own arguments (after `--`) */
  args: string[];
}

/** Subcommands the toolkit owns: the backend is configured by it, never by hand. */
const REFUSED: Record<string, string> = {
  init: 'the toolkit runs init itself, with the backend in the state bucket',
};

/**
 * `terraform -e ENV -- ARGS...`: the platform root's Terraform for the operator — `state
 * list`, `import`, `force-unlock`, `output`... — with the backend configured as `run`
 * configures it (S3 state bucket, `use_lockfile`, encryption) and the same variables.
 * Creates nothing: the KMS key is looked up, not bootstrapped.
 * @param args terraform's arguments (after `--`)
 * @returns terraform's exit code
 * @throws UserError (exit 2) for no arguments, `init`, or an environment `run` never bootstrapped
 */
export async function terraformCommand(o: TerraformOptions, context: CommandContext): Promise<number> {
  const { args } = o;
  if (args.length === 0) {
    throw new UserError('terraform needs terraform arguments after --', {
      hint: `e.g. terraform -e ${o.env} -- state list`,
    });
  }
  const refused = REFUSED[args[0]!];
  if (refused)
    throw new UserError(`terraform ${args[0]}: ${refused}`, {
      hint: `run the command you need after it, e.g. -- state list`,
    });
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  try {
    const kmsKeyArn = await findKmsKeyArn(ctx.aws, ctx.names.kmsAlias);
    const { tf, vars } = await platformTerraform(ctx, kmsKeyArn);
    const varFile = await tf.writeVars(vars);
    log.step(`terraform ${args.join(' ')}`);
    return await tf.passthrough(args, varFile);
  } finally {
    await ctx.close();
  }
}
