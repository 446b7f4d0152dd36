import { Option } from 'commander';
import { type CommandSpec, envOption, localOption, STD_EXIT } from '../common.js';

/** The `terminate-layer` command's flags; the handler is src/commands/terminate-layer.ts, imported when it runs. */
export const terminateLayerSpec: CommandSpec = {
  name: 'terminate-layer',
  summary: 'terminate every instance of a layer; its ASGs replace them from the current launch template',
  configure: (c) =>
    c
      .argument('<layer>', 'secure, compute or bastion')
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
  run: async (o, args) => {
    const layer = args[0] ?? '';
    if (!['secure', 'compute', 'bastion'].includes(layer)) {
      const { UserError } = await import('../../errors.js');
      throw new UserError(`terminate-layer ${layer}: the layer must be secure, compute or bastion`);
    }
    return (await import('../../commands/terminate-layer.js')).terminateLayerCommand({
      ...(o as never as object),
      layer,
    } as never);
  },
  example: [
    'terminate-layer -e play-alice compute',
    'terminate-layer -e prod bastion --yes --confirm prod',
    'terminate-layer -e prod secure --all-at-once   # emergencies only: prefer roll secure',
  ],
  exitCodes: [...STD_EXIT, '130 declined at the prompt'],
};
