import { Option } from 'commander';
import { type CommandSpec, envOption, STD_EXIT } from '../common.js';

/** `policy`: the policy rules over the environment, its manifests and a Terraform plan (README "policy"). */
export const policySpec: CommandSpec = {
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
  run: async (o) => (await import('../../commands/policy.js')).policyCommand(o as never),
  example: ['policy -e prod', 'policy -e prod --plan-json plan.json --json'],
  exitCodes: [...STD_EXIT, '6 refused: a rule failed outside play-* (rule, resource and attribute named)'],
};
