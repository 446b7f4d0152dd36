import { Argument, Option } from 'commander';
import type { TerminateLayerOptions } from '../../commands/terminate-layer.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** The `terminate-layer` command's flags; the handler is src/commands/terminate-layer.ts, imported when it runs. */
export const terminateLayerSpec = defineCommand<
  TerminateLayerOptions,
  Omit<TerminateLayerOptions, 'layer'>,
  [TerminateLayerOptions['layer']]
>({
  name: 'terminate-layer',
  summary: 'terminate every instance of a layer; its ASGs replace them from the current launch template',
  configure: (c) =>
    c
      .addArgument(
        new Argument('<layer>', 'secure, compute or bastion').choices(['secure', 'compute', 'bastion']),
      )
      .addOption(envOption())
      .addOption(localOption())
      .addOption(new Option('--yes', 'do not ask (outside play-* environments also needs --confirm ENV)'))
      .addOption(new Option('--confirm <env>', 'the environment name, typed back (with --yes)'))
      .addOption(
        new Option(
          '--all-at-once',
          'secure only: terminate every master at once (etcd loses quorum); asks for the environment name',
        ),
      ),
  normalize: (flags, [layer]) => ({ ...flags, layer }),
  handler: async () => (await import('../../commands/terminate-layer.js')).terminateLayerCommand,
  example: [
    'terminate-layer -e play-alice compute',
    'terminate-layer -e prod bastion --yes --confirm prod',
    'terminate-layer -e prod secure --all-at-once   # emergencies only: prefer roll secure',
  ],
  exitCodes: [...STD_EXIT, '130 declined at the prompt'],
});
