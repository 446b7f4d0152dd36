import { Option } from 'commander';
import type { UploadSecretsOptions } from '../../commands/upload-secrets.js';
import { defineCommand, envOption, LAYER_CHOICES, localOption, STD_EXIT } from '../common.js';

/** The `upload-secrets` command's flags; the handler is src/commands/upload-secrets.ts, imported when it runs. */
export const uploadSecretsSpec = defineCommand<UploadSecretsOptions>({
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
      )
      .addOption(
        new Option(
          '--recover',
          'with --layer: the index fails authentication — publish the local copy over the newest authentic version (asks first)',
        ),
      )
      .addOption(new Option('--yes', 'with --recover: do not ask')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/upload-secrets.js')).uploadSecretsCommand,
  example: [
    'upload-secrets -e prod --dry-run',
    'upload-secrets -e prod --layer secure',
    'upload-secrets -e prod --recover --layer secure --dry-run',
  ],
  exitCodes: [
    ...STD_EXIT,
    '3 conflict: someone else published meanwhile; nothing of yours was published',
    '4 integrity: an index failed verification, went back, or vanished after a generation was seen',
  ],
});
