import { Option } from 'commander';
import type { RollCommandOptions } from '../../commands/roll.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** `roll LAYER`: rolling replacement (src/roll/); the handler is src/commands/roll.ts. */
export const rollSpec = defineCommand<RollCommandOptions, Omit<RollCommandOptions, 'layer'>, [string]>({
  name: 'roll',
  summary:
    'replace outdated instances of a layer one by one: workers drained (PDB-aware), masters gated on etcd quorum',
  configure: (c) =>
    c
      .argument('<layer>', 'compute, secure or bastion')
      .addOption(envOption())
      .addOption(localOption())
      .addOption(new Option('--plan', 'list the instances to replace and why; change nothing'))
      .addOption(new Option('--json', 'print JSON (the plan, or the report)'))
      .addOption(new Option('--yes', 'do not ask'))
      .addOption(new Option('--force', 'replace every instance of the layer, up to date or not'))
      .addOption(
        new Option(
          '--kubeconfig <file>',
          'kubeconfig (default: secrets/<env>/locked/admin.conf, else the bucket’s)',
        ),
      )
      .addOption(
        new Option('--max-unavailable <n>', 'workers replaced at a time (masters: always 1)').default('1'),
      )
      .addOption(new Option('--drain-timeout <seconds>', 'how long a drain may take').default('900'))
      .addOption(
        new Option(
          '--on-drain-timeout <action>',
          'fail: stop; skip: leave the node cordoned, report it, go on',
        )
          .choices(['fail', 'skip'])
          .default('fail'),
      )
      .addOption(
        new Option('--replace-timeout <seconds>', 'how long to wait for each replacement').default('900'),
      )
      .addOption(
        new Option('--validate-interval <seconds>', 'seconds between the two validations').default('10'),
      )
      .addOption(
        new Option('--validate-timeout <seconds>', 'how long each validation may wait').default('900'),
      )
      .addOption(new Option('--poll <seconds>', 'seconds between polls while waiting').default('5'))
      .addOption(new Option('--allow-downgrade', 'act on a cluster state written by a newer toolkit'))
      .addOption(
        new Option(
          '--etcd-endpoint <url>',
          'masters: a route to one etcd member (e.g. an ssh tunnel); the roll takes its snapshots through it',
        ).conflicts('etcdViaBastion'),
      )
      .addOption(
        new Option(
          '--etcd-via-bastion',
          'masters: open that route itself, an ssh tunnel through bastion-<env> (needs agent-setup -e ENV)',
        ).conflicts('etcdEndpoint'),
      )
      .addOption(
        new Option('--etcd-cacert <file>', 'etcd CA (default: secrets/<env>/secure/pki/etcd/ca.crt)'),
      )
      .addOption(
        new Option(
          '--etcd-cert <file>',
          'etcd client certificate (default: secrets/<env>/secure/pki/apiserver-etcd-client.crt)',
        ),
      )
      .addOption(
        new Option(
          '--etcd-key <file>',
          'its key (default: secrets/<env>/secure/pki/apiserver-etcd-client.key)',
        ),
      ),
  normalize: (flags, [layer]) => ({ ...flags, layer }),
  handler: async () => (await import('../../commands/roll.js')).rollCommand,
  example: [
    'roll -e prod compute --plan',
    'roll -e prod compute --yes',
    'roll -e prod secure --yes --etcd-via-bastion',
    'roll -e prod secure --yes --etcd-endpoint https://127.0.0.1:2379',
  ],
  exitCodes: [
    ...STD_EXIT,
    '3 conflict: another operation holds the cluster state, the etcd quorum gate refused (member named), or no etcd snapshot at most 60 s old could be had (also: the tunnel through the bastion did not open)',
    '5 a drain (--on-drain-timeout fail), a replacement or a validation timed out',
    '130 declined, or interrupted (the journal is kept: run roll again to resume)',
  ],
});
