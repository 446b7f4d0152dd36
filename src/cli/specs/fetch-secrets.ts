import { Option } from 'commander';
import type { FetchSecretsOptions } from '../../commands/fetch-secrets.js';
import { defineCommand, envOption, LAYER_CHOICES, localOption, STD_EXIT } from '../common.js';

/** The `fetch-secrets` command's flags; the handler is src/commands/fetch-secrets.ts, imported when it runs. */
/** commander's flags: the hidden, deprecated `--no-kubeconfig` (now the default) arrives as `kubeconfig`. */
type FetchSecretsFlags = FetchSecretsOptions & { kubeconfig?: boolean };

export const fetchSecretsSpec = defineCommand<FetchSecretsOptions, FetchSecretsFlags>({
  name: 'fetch-secrets',
  summary: 'fetch the layers you may read into secrets/<env>/, verified; the SSH key for agent-setup',
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
      .addOption(
        new Option(
          '--break-glass',
          'also merge the shared cluster-admin locked/admin.conf into ~/.kube/config as context <env>-break-glass',
        ),
      )
      .addOption(
        new Option('--no-kubeconfig', 'deprecated: ~/.kube/config is left alone by default').hideHelp(),
      ),
  normalize: ({ kubeconfig: _deprecated, ...flags }) => flags,
  handler: async () => (await import('../../commands/fetch-secrets.js')).fetchSecretsCommand,
  example: [
    'fetch-secrets -e prod',
    'fetch-secrets -e prod --layer locked --force',
    'fetch-secrets -e prod --break-glass',
  ],
  exitCodes: [
    ...STD_EXIT,
    '3 local files differ from the bucket (listed); nothing written',
    '4 integrity: verification failed',
  ],
});
