import { Option } from 'commander';
import type { PolicyOptions } from '../../commands/policy.js';
import { defineCommand, envOption, STD_EXIT } from '../common.js';

/** `policy`: the policy rules over the environment, its manifests and a Terraform plan (README "policy"). */
export const policySpec = defineCommand<PolicyOptions>({
  name: 'policy',
  summary:
    'check the environment, its rendered manifests and a Terraform plan against the policy rules (offline)',
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(
        new Option(
          '--plan-json <file>',
          'a Terraform plan as JSON (terraform show -json <planfile>) to check too',
        ),
      )
      .addOption(new Option('--json', 'print the report as JSON'))
      .addOption(new Option('--verbose', 'list passed and not-evaluated rules too')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/policy.js')).policyCommand,
  example: ['policy -e prod', 'policy -e prod --plan-json plan.json --json'],
  exitCodes: [...STD_EXIT, '6 refused: a rule failed outside play-* (rule, resource and attribute named)'],
});
