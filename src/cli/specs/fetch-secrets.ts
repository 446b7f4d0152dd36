import { Option } from 'commander';
import type { FetchSecretsOptions } from '../../commands/fetch-secrets.js';
import { defineCommand, envOption, LAYER_CHOICES, localOption, STD_EXIT } from '../common.js';

/** The `fetch-secrets` command's flags; the handler is src/commands/fetch-secrets.ts, imported when it runs. */
/** commander's flags: `--no-kubeconfig` arrives as `kubeconfig: false`. */
type FetchSecretsFlags = Omit<FetchSecretsOptions, 'noKubeconfig'> & { kubeconfig: boolean };

export const fetchSecretsSpec = defineCommand<FetchSecretsOptions, FetchSecretsFlags>({
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
  normalize: ({ kubeconfig, ...flags }) => ({ ...flags, noKubeconfig: kubeconfig === false }),
  handler: async () => (await import('../../commands/fetch-secrets.js')).fetchSecretsCommand,
  example: ['fetch-secrets -e prod', 'fetch-secrets -e prod --layer locked --force'],
  exitCodes: [
    ...STD_EXIT,
    '3 local files differ from the bucket (listed); nothing written',
    '4 integrity: verification failed',
  ],
});
