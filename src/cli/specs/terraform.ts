import type { TerraformOptions } from '../../commands/terraform.js';
import { defineCommand, envOption, localOption } from '../common.js';

/** The `terraform` passthrough's flags; the handler is src/commands/terraform.ts, imported when it runs. */
export const terraformSpec = defineCommand<TerraformOptions, Omit<TerraformOptions, 'args'>, [string[]]>({
  name: 'terraform',
  summary: "the platform Terraform with the environment's backend and variables: terraform -e ENV -- ARGS",
  configure: (c) =>
    c.argument('<args...>', 'terraform arguments, after --').addOption(envOption()).addOption(localOption()),
  normalize: (flags, [args]) => ({ ...flags, args }),
  handler: async () => (await import('../../commands/terraform.js')).terraformCommand,
  example: [
    'terraform -e prod -- state list',
    'terraform -e prod -- import module.network.aws_vpc.this vpc-0abc',
    'terraform -e prod -- force-unlock -force LOCK_ID',
  ],
  exitCodes: ["terraform's own", '2 bad input (environment file, no arguments, init)'],
});
