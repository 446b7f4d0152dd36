import { bootstrap } from '../../src/aws/bootstrap.js';
import { AwsClients } from '../../src/aws/clients.js';
import { type BootstrapNames, bootstrapNames } from '../../src/config/topology.js';
import type { KmsKeyService } from '../../src/secrets/keyring.js';
import { openSecretStore, type SecretStore } from '../../src/secrets/store.js';

export const TEST_REGION = 'eu-west-1';

/** An environment bootstrapped in a local AWS, with its secrets bucket opened. */
export interface TestEnvironment {
  aws: AwsClients;
  names: BootstrapNames;
  /** the environment's KMS key ARN (from bootstrap) */
  kmsKeyArn: string;
  store: SecretStore;
  /** the store's KMS key service: `keys.requests` counts KMS calls */
  keys: KmsKeyService;
}

/**
 * Bootstraps environment `name` (KMS key, state and secrets buckets) in the local AWS at
 * `endpoint`, as `run` does, and opens its secrets bucket ({@link openSecretStore}).
 * The caller destroys `aws` when done.
 */
export async function bootstrapEnvironment(
  endpoint: string,
  name: string,
  opts: { concurrency?: number } = {},
): Promise<TestEnvironment> {
  const aws = new AwsClients({ region: TEST_REGION, endpoint });
  const names = bootstrapNames({ name, region: TEST_REGION }, (await aws.identity()).account);
  const boot = await bootstrap(aws, names, name);
  const { store, keys } = await openSecretStore(aws, {
    environment: name,
    bucket: names.secretsBucket,
    kmsKeyId: boot.kmsKeyArn,
    ...opts,
  });
  return { aws, names, kmsKeyArn: boot.kmsKeyArn, store, keys };
}
