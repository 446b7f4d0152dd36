import { Option } from 'commander';
import type { ValidateOptions } from '../../commands/validate.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** `validate`: is the cluster healthy, not just synced (src/validate/). */
export const validateSpec = defineCommand<ValidateOptions>({
  name: 'validate',
  summary:
    'check the cluster is healthy: ASGs, Nodes Ready, control-plane and critical pods, etcd, agents, certificates, version skew',
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(localOption())
      .addOption(
        new Option(
          '--kubeconfig <file>',
          'kubeconfig (default: secrets/<env>/locked/admin.conf, else the bucket’s)',
        ),
      )
      .addOption(new Option('--wait', 'validate until --count consecutive passes, or --timeout'))
      .addOption(new Option('--count <n>', 'consecutive passes --wait needs').default('2'))
      .addOption(new Option('--interval <seconds>', 'seconds between validations').default('10'))
      .addOption(new Option('--timeout <seconds>', 'how long --wait waits').default('900'))
      .addOption(new Option('--json', 'print the result as JSON')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/validate.js')).validateCommand,
  example: [
    'validate -e prod',
    'validate -e prod --wait --timeout 600',
    'validate -e prod --json | jq .failures',
  ],
  exitCodes: [...STD_EXIT, '5 not healthy (each failure named), the API unreachable, or --wait timed out'],
});
