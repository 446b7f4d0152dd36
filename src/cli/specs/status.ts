import { Option } from 'commander';
import type { StatusOptions } from '../../commands/status.js';
import { defineCommand, envOption, localOption, STD_EXIT } from '../common.js';

/** `status`: the persisted cluster state of an environment (src/state/). */
export const statusSpec = defineCommand<StatusOptions>({
  name: 'status',
  summary:
    'the cluster state: versions, etcd member map, certificates, generations, last validation/rollout/backup, operation in progress',
  configure: (c) =>
    c
      .addOption(envOption())
      .addOption(localOption())
      .addOption(new Option('--json', 'print the cluster-state document as JSON')),
  normalize: (flags) => flags,
  handler: async () => (await import('../../commands/status.js')).statusCommand,
  example: ['status -e prod', 'status -e prod --json | jq .etcdMembers'],
  exitCodes: [
    ...STD_EXIT.slice(0, 2),
    '2 bad input, or the cluster state does not match its schema (each key named)',
    '4 integrity: the cluster state failed authentication (tampered, moved, another environment)',
  ],
});
