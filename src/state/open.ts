import type { AwsClients } from '../aws/clients.js';
import type { BootstrapNames } from '../config/topology.js';
import { toolkitVersion } from '../version.js';
import { type ClusterStateStore, openClusterState } from './store.js';

/**
 * The cluster state of an opened environment: its state bucket and KMS key (the names
 * `run` bootstraps), written as this toolkit's version.
 */
export function environmentState(
  aws: AwsClients,
  environment: string,
  names: Pick<BootstrapNames, 'stateBucket' | 'kmsAlias'>,
): Promise<ClusterStateStore> {
  return openClusterState(aws, {
    environment,
    bucket: names.stateBucket,
    kmsKeyId: names.kmsAlias,
    toolkitVersion: toolkitVersion(),
  });
}
