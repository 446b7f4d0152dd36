import { parse, stringify } from 'yaml';
import { UserError } from '../errors.js';

/**
 * Merges one environment's kubeconfig into an operator's kubeconfig (~/.kube/config):
 * the cluster, user and context named after the environment are added or replaced,
 * every other entry is kept as it was. current-context is set only when none is set.
 * Shape: Kubernetes "Organizing Cluster Access Using kubeconfig Files" (v1 Config).
 *
 * @param existing the current file's text ('' when there is none)
 * @param incoming the environment's kubeconfig (one cluster, user and context)
 * @param name the environment name the entries are stored under
 * @throws UserError when the existing file is not a kubeconfig (it is left untouched)
 */
export function mergeKubeconfig(existing: string, incoming: string, name: string, where: string): string {
  type Named = { name: string; [k: string]: unknown };
  type Config = {
    clusters?: Named[];
    users?: Named[];
    contexts?: Named[];
    'current-context'?: string;
    [k: string]: unknown;
  };
  let base: Config;
  try {
    base = (existing.trim() ? parse(existing) : {}) as Config;
  } catch (e) {
    throw new UserError(`${where}: not valid YAML, not merging (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof base !== 'object' || base === null || Array.isArray(base)) {
    throw new UserError(`${where}: not a kubeconfig, not merging`);
  }
  const add = parse(incoming) as Config;
  const one = (list: Named[] | undefined, what: string): Record<string, unknown> => {
    if (list?.length !== 1) throw new Error(`kubeconfig to merge must hold exactly one ${what}`);
    return list[0]!;
  };
  const cluster = one(add.clusters, 'cluster');
  const user = one(add.users, 'user');
  const context = one(add.contexts, 'context') as { context?: Record<string, unknown> };
  const put = (list: Named[] | undefined, entry: Record<string, unknown>): Named[] => [
    ...(list ?? []).filter((e) => e.name !== name),
    { ...entry, name } as Named,
  ];
  const merged: Config = {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    ...base,
    clusters: put(base.clusters, cluster),
    users: put(base.users, user),
    contexts: put(base.contexts, { ...context, context: { ...context.context, cluster: name, user: name } }),
  };
  if (!merged['current-context']) merged['current-context'] = name;
  return stringify(merged);
}
