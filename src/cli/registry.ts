import { Option } from 'commander';
import { type CommandSpec, envOption, LAYER_CHOICES, localOption, STD_EXIT } from './common.js';
import { manifestSyncSpec } from './manifest-sync-spec.js';
import { agentSetupSpec } from './specs/agent-setup.js';
import { etcdBackupSpec, etcdRestoreSpec } from './specs/etcd-backup.js';
import { statusSpec } from './specs/status.js';
import { syncStatusSpec } from './specs/sync-status.js';

/** The command table, in the order `--help` lists them. */
export const commands: CommandSpec[] = [
  {
    name: 'run',
    summary: 'bootstrap, render and publish manifests, then plan and apply the platform Terraform',
    configure: (c) =>
      c
        .addOption(envOption())
        .addOption(localOption())
        .addOption(new Option('--yes', 'apply without asking').conflicts('plan'))
        .addOption(new Option('--plan', 'stop after showing the plan'))
        .addOption(new Option('--skip-terraform', 'bootstrap, render and publish only'))
        .addOption(
          new Option(
            '--wait',
            "after publishing, wait until every master's manifest-sync applied the new generation",
          ),
        )
        .addOption(new Option('--wait-timeout <seconds>', 'how long --wait waits').default('300')),
    run: async (o) => (await import('../commands/run.js')).runCommand(o as never),
    example: ['run -e prod --plan', 'run -e play-alice --yes', 'run -e prod --yes --wait'],
    exitCodes: [
      ...STD_EXIT,
      '3 conflict: another publish won',
      '5 --wait timed out: not every master converged (named)',
      '130 declined at the prompt',
    ],
  },
  manifestSyncSpec,
  syncStatusSpec,
  statusSpec,
  agentSetupSpec,
  etcdBackupSpec,
  etcdRestoreSpec,
  {
    name: 'upload-secrets',
    summary: 'publish secrets/<env>/ to the secrets bucket, layer by layer (unchanged files are skipped)',
    configure: (c) =>
      c
        .addOption(envOption())
        .addOption(localOption())
        .addOption(
          new Option('--dry-run', 'print the plan (added, changed, removed per layer) and touch nothing'),
        )
        .addOption(
          new Option('--layer <layer...>', 'layers to publish (default: every layer present)').choices(
            LAYER_CHOICES,
          ),
        )
        .addOption(new Option('--json', 'print the plan as JSON'))
        .addOption(
          new Option(
            '--allow-empty',
            'with --layer: publish a layer whose directory is missing or empty (every node removes its files)',
          ),
        ),
    run: async (o) => (await import('../commands/upload-secrets.js')).uploadSecretsCommand(o as never),
    example: ['upload-secrets -e prod --dry-run', 'upload-secrets -e prod --layer secure'],
    exitCodes: [
      ...STD_EXIT,
      '3 conflict: someone else published meanwhile; nothing of yours was published',
      '4 integrity: an index failed verification, went back, or vanished after a generation was seen',
    ],
  },
  {
    name: 'fetch-secrets',
    summary:
      'fetch the layers you may read into secrets/<env>/, verified; set up ~/.kube/config and the SSH key',
    configure: (c) =>
      c
        .addOption(envOption())
        .addOption(localOption())
        .addOption(new Option('--force', 'overwrite local files that differ from the bucket'))
        .addOption(
          new Option('--layer <layer...>', 'layers to fetch (default: every layer you may read)').choices(
            LAYER_CHOICES,
          ),
        )
        .addOption(new Option('--no-kubeconfig', 'leave ~/.kube/config alone')),
    run: async (o) => {
      const opts = o as Record<string, unknown>;
      const { fetchSecretsCommand } = await import('../commands/fetch-secrets.js');
      return fetchSecretsCommand({
        ...(opts as never as Parameters<typeof fetchSecretsCommand>[0]),
        noKubeconfig: opts.kubeconfig === false,
      });
    },
    example: ['fetch-secrets -e prod', 'fetch-secrets -e prod --layer locked --force'],
    exitCodes: [
      ...STD_EXIT,
      '3 local files differ from the bucket (listed); nothing written',
      '4 integrity: verification failed',
    ],
  },
  {
    name: 'aws-instances',
    summary: "the environment's instances: Name, private IP, public IP, instance id, state, AZ",
    configure: (c) =>
      c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
    run: async (o) => (await import('../commands/aws-instances.js')).awsInstancesCommand(o as never),
    example: ['aws-instances -e prod', 'aws-instances -e prod --json | jq -r ".[].privateIp"'],
    exitCodes: STD_EXIT,
  },
  {
    name: 'aws-elbs',
    summary: "the environment's load balancers: name, DNS name, type, scheme, state",
    configure: (c) =>
      c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
    run: async (o) => (await import('../commands/aws-instances.js')).awsElbsCommand(o as never),
    example: ['aws-elbs -e prod'],
    exitCodes: STD_EXIT,
  },
  {
    name: 'aws-volumes',
    summary: "the environment's EBS volumes: name, id, size, type, state, AZ, attachment",
    configure: (c) =>
      c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
    run: async (o) => (await import('../commands/aws-instances.js')).awsVolumesCommand(o as never),
    example: ['aws-volumes -e prod --json'],
    exitCodes: STD_EXIT,
  },
  {
    name: 'scale-compute',
    summary: 'set the number of workers (the desired capacity of the worker ASG)',
    configure: (c) =>
      c
        .argument('<count>', 'desired number of workers, within the ASG bounds')
        .addOption(envOption())
        .addOption(localOption())
        .addOption(new Option('--yes', 'do not ask')),
    run: async (o, args) =>
      (await import('../commands/scale.js')).scaleComputeCommand({
        ...(o as never as object),
        count: args[0] ?? '',
      } as never),
    example: ['scale-compute -e prod 6'],
    exitCodes: [...STD_EXIT, '130 declined at the prompt'],
  },
  {
    name: 'terminate-layer',
    summary: 'terminate every instance of a layer; its ASGs replace them from the current launch template',
    configure: (c) =>
      c
        .argument('<layer>', 'secure, compute or bastion')
        .addOption(envOption())
        .addOption(localOption())
        .addOption(new Option('--yes', 'do not ask (outside play-* environments also needs --confirm ENV)'))
        .addOption(new Option('--confirm <env>', 'the environment name, typed back (with --yes)')),
    run: async (o, args) => {
      const layer = args[0] ?? '';
      if (!['secure', 'compute', 'bastion'].includes(layer)) {
        const { UserError } = await import('../errors.js');
        throw new UserError(`terminate-layer ${layer}: the layer must be secure, compute or bastion`);
      }
      return (await import('../commands/scale.js')).terminateLayerCommand({
        ...(o as never as object),
        layer,
      } as never);
    },
    example: [
      'terminate-layer -e play-alice compute',
      'terminate-layer -e prod bastion --yes --confirm prod',
    ],
    exitCodes: [...STD_EXIT, '130 declined at the prompt'],
  },
  {
    name: 'cleanup',
    summary:
      'destroy what run created, after showing it and a confirmation; keeps state, secrets and the KMS key',
    configure: (c) =>
      c
        .addOption(envOption())
        .addOption(localOption())
        .addOption(new Option('--yes', 'do not ask (outside play-* environments also needs --confirm ENV)'))
        .addOption(new Option('--confirm <env>', 'the environment name, typed back (with --yes)'))
        .addOption(
          new Option('--purge', 'also delete both buckets and schedule the KMS key deletion (asks again)'),
        ),
    run: async (o) => (await import('../commands/cleanup.js')).cleanupCommand(o as never),
    example: ['cleanup -e play-alice', 'cleanup -e staging --yes --confirm staging'],
    exitCodes: [...STD_EXIT, '130 declined at the prompt'],
  },
  {
    name: 'whoami',
    summary: 'the AWS identity the environment commands act as: account and ARN',
    configure: (c) =>
      c.addOption(envOption()).addOption(localOption()).addOption(new Option('--json', 'print JSON')),
    run: async (o) => (await import('../commands/whoami.js')).whoamiCommand(o as never),
    example: ['whoami -e prod'],
    exitCodes: STD_EXIT,
  },
  {
    name: 'local-aws',
    summary: 'manage the embedded local AWS (moto_server): start | stop | env',
    configure: (c) =>
      c.argument('<action>', 'start (persistent), stop, or env (print export lines, starting one if needed)'),
    run: async (_o, args) => (await import('../commands/local-aws.js')).localAwsCommand(args[0] ?? ''),
    example: ['eval "$(local-aws env)"', 'local-aws stop'],
    exitCodes: STD_EXIT,
  },
];

export { type CommandSpec, envOption, localOption, STD_EXIT } from './common.js';
