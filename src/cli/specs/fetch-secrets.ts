import { Option } from 'commander';
import { type CommandSpec, envOption, LAYER_CHOICES, localOption, STD_EXIT } from '../common.js';

/** The `fetch-secrets` command's flags; the handler is src/commands/fetch-secrets.ts, imported when it runs. */
export const fetchSecretsSpec: CommandSpec = {
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
    const { fetchSecretsCommand } = await import('../../commands/fetch-secrets.js');
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
};
