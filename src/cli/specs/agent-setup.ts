import { Option } from 'commander';
import type { AgentSetupOptions } from '../../commands/agent-setup.js';
import { collectHost, parseHost, parseLifetime, parsePort } from '../../ssh/args.js';
import { defineCommand, envOption, localOption } from '../common.js';

/**
 * The `agent-setup` command's flags. registry.ts imports this module while it is itself
 * being evaluated, so nothing of registry.ts is used at load time: envOption/localOption
 * are called inside configure() (function declarations are hoisted; its consts are not).
 */
export const agentSetupSpec = defineCommand<AgentSetupOptions>({
  name: 'agent-setup',
  summary:
    'ssh-agent with the environment\'s key and an ssh config for its bastion: eval "$(agent-setup -e ENV)", then ssh bastion',
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(localOption())
      .addOption(
        new Option(
          '--bastion <host>',
          "the bastion's address (default: the running <env>-bastion's public IP)",
        ).argParser(parseHost),
      )
      .addOption(
        new Option('--bastion-port <port>', "the bastion's sshd port").argParser(parsePort).default(22),
      )
      .addOption(new Option('--port <port>', "the private hosts' sshd port").argParser(parsePort).default(22))
      .addOption(
        new Option('--lifetime <time>', 'how long the agent keeps the key (ssh time: 8h, 90m, 1h30m)')
          .argParser(parseLifetime)
          .default('8h'),
      )
      .addOption(
        new Option(
          '--pin [source]',
          "pin host keys: console (the instances' EC2 console output) or keyscan (ssh-keyscan, trust on first use)",
        )
          .choices(['keyscan', 'console'])
          .preset('keyscan'),
      )
      .addOption(
        new Option(
          '--node <host>',
          'a private host to pin (repeatable; default: every running node)',
        ).argParser(collectHost),
      ),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/agent-setup.js')).agentSetupCommand,
  example: [
    'eval "$(agent-setup -e prod)"          # then: ssh bastion ; ssh 10.80.10.12',
    'eval "$(agent-setup -e prod --pin console)"',
    'agent-setup -e play-alice --bastion 203.0.113.7 --pin keyscan --node 10.80.10.12',
  ],
  exitCodes: [
    '0 success',
    '1 unexpected failure (ssh tools, AWS)',
    '2 bad input: environment file, flag value, missing key or key mode not 0600, no bastion found',
  ],
});
