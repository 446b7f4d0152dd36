import { Option } from 'commander';
import type { ExportKubeconfigOptions } from '../../commands/export-kubeconfig.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** The `export-kubeconfig` command's flags; the handler is src/commands/export-kubeconfig.ts. */
export const exportKubeconfigSpec = defineCommand<ExportKubeconfigOptions>({
  name: 'export-kubeconfig',
  summary:
    'your own short-lived cluster-admin certificate (user from your AWS identity), merged into ~/.kube/config',
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(localOption())
      .addOption(
        new Option('--lifetime <time>', 'how long it is valid (18h, 90m, 1h30m; at most 7d)').default('18h'),
      )
      .addOption(
        new Option('--server <url>', 'the API server URL (default: the public API name, as admin.conf)'),
      )
      .addOption(
        new Option(
          '--kubeconfig <file>',
          "the kubeconfig to merge into (default: $KUBECONFIG's first, else ~/.kube/config)",
        ),
      ),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/export-kubeconfig.js')).exportKubeconfigCommand,
  example: ['export-kubeconfig -e prod', 'export-kubeconfig -e prod --lifetime 2h'],
  exitCodes: STD_EXIT,
});
