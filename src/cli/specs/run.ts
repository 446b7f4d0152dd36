import { Option } from 'commander';
import type { RunOptions } from '../../commands/run.js';
import { defineCommand, envOption, localOption, STD_EXIT, secondsArg } from '../common.js';

/** The `run` command's flags; the handler is src/commands/run.ts, imported when it runs. */
export const runSpec = defineCommand<RunOptions>({
  name: 'run',
  summary:
    'plan the whole change (bootstrap, PKI, layers, agent, Terraform, policy), ask once, then apply it',
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(localOption())
      .addOption(
        new Option(
          '--yes',
          'apply without asking (a risky change outside play-* also needs --confirm ENV)',
        ).conflicts('plan'),
      )
      .addOption(new Option('--confirm <env>', 'the environment name, typed back, for scripts (with --yes)'))
      .addOption(new Option('--plan', 'show the change set and stop: nothing is written anywhere'))
      .addOption(new Option('--json', 'print the change set as JSON on stdout'))
      .addOption(new Option('--exit-code', 'with --plan: exit 7 when changes are pending, 0 when none'))
      .addOption(new Option('--diff', "print Terraform's full plan too"))
      .addOption(
        new Option(
          '--out <file>',
          'with --plan: save the change set (encrypted with the environment KMS key, mode 600) for run --apply',
        ),
      )
      .addOption(
        new Option(
          '--apply <file>',
          'apply exactly the change set saved by run --plan --out, or refuse it (exit 3) if anything it was computed from changed',
        ),
      )
      .addOption(new Option('--skip-terraform', 'bootstrap, render and publish only'))
      .addOption(
        new Option(
          '--rollout <strategy>',
          'how a new secure generation reaches the running masters: staged (one at a time, each after the last reported healthy) or all-at-once (playgrounds)',
        )
          .choices(['staged', 'all-at-once'])
          .default('staged'),
      )
      .addOption(
        new Option(
          '--rollout-timeout <seconds>',
          'staged: how long each master may take to report healthy on the new generation',
        )
          .argParser(secondsArg(1, 86_400))
          .default(300),
      )
      .addOption(new Option('--allow-downgrade', 'act on a cluster state last written by a newer toolkit'))
      .addOption(
        new Option(
          '--wait',
          "after publishing, wait until every master's manifest-sync applied the new generation",
        ),
      )
      .addOption(
        new Option('--wait-timeout <seconds>', 'how long --wait waits')
          .argParser(secondsArg(1, 86_400))
          .default(300),
      ),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/run.js')).runCommand,
  example: [
    'run -e prod --plan',
    'run -e prod --plan --json --exit-code',
    'run -e prod --plan --out prod.plan && run -e prod --apply prod.plan',
    'run -e play-alice --yes',
    'run -e prod --yes --confirm prod --wait',
    'run -e play-alice --yes --rollout all-at-once',
  ],
  exitCodes: [
    ...STD_EXIT,
    '3 conflict: a layer, the local files or the Terraform state moved since the plan (--apply: the saved plan is stale); nothing more applied',
    '4 --apply FILE: the file was changed, is damaged or belongs to another environment; nothing applied',
    '6 refused by policy (rule, resource and attribute named); nothing written',
    '7 --plan --exit-code: changes are pending',
    '5 --wait timed out: not every master converged (named)',
    '1 a staged rollout stopped: the master that did not report healthy is named; the others stay on the previous generation',
    '130 declined at the prompt',
  ],
});
