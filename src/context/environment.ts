import { AwsClients, assertAccount, awsSettings, type Identity } from '../aws/clients.js';
import { ensureLocalAws, type LocalAws } from '../aws/local.js';
import { type EnvConfig, loadEnvironment } from '../config/load.js';
import { type BootstrapNames, bootstrapNames } from '../config/topology.js';
import { log } from '../log.js';
import type { KmsKeyService } from '../secrets/keyring.js';
import { openSecretStore, type SecretStore } from '../secrets/store.js';

/**
 * What every environment command starts from: the validated environment file, the local
 * AWS when asked for, AWS clients, the caller's identity (checked against AWS_ACCOUNT_ID)
 * and the bootstrap names. Validation comes first, so a bad file fails (exit 2) before
 * any AWS call or local process is started.
 */
export interface EnvContext {
  cfg: EnvConfig;
  aws: AwsClients;
  identity: Identity;
  names: BootstrapNames;
  local?: LocalAws;
  /** releases clients and stops a local AWS this command started */
  close(): Promise<void>;
}

export interface ContextOptions {
  /** environment name */
  env: string;
  /** use the embedded local AWS */
  local?: boolean;
  /** don't print the identity line (whoami prints it on stdout itself) */
  quiet?: boolean;
}

/**
 * Opens an environment.
 * @throws UserError/ValidationError (exit 2) for a missing or invalid environment file or
 *   credentials of the wrong account
 */
export async function openEnvironment(opts: ContextOptions): Promise<EnvContext> {
  const cfg = await loadEnvironment(opts.env);
  let local: LocalAws | undefined;
  if (opts.local) local = await ensureLocalAws();
  // the local AWS's endpoint and credentials go to the clients (and, through ctx.local, to
  // Terraform) explicitly; this process's environment is left as it is
  const aws = new AwsClients(awsSettings(cfg.region, cfg.awsProfile, local));
  try {
    const identity = await aws.identity();
    assertAccount(identity, cfg.awsAccountId, cfg.name);
    if (!opts.quiet)
      log.step(`environment ${cfg.name} (${cfg.region}) as ${identity.arn} (account ${identity.account})`);
    return {
      cfg,
      aws,
      identity,
      names: bootstrapNames(cfg, identity.account),
      ...(local ? { local } : {}),
      close: async () => {
        aws.destroy();
        await local?.stop();
      },
    };
  } catch (e) {
    aws.destroy();
    await local?.stop();
    throw e;
  }
}

/** A SecretStore for the environment's secrets bucket and KMS key ({@link openSecretStore}). */
export function secretStore(
  ctx: Pick<EnvContext, 'aws' | 'cfg' | 'names'>,
  kmsKeyId: string = ctx.names.kmsAlias,
): Promise<{ store: SecretStore; keys: KmsKeyService }> {
  return openSecretStore(ctx.aws, { environment: ctx.cfg.name, bucket: ctx.names.secretsBucket, kmsKeyId });
}

/**
 * The environment's etcd snapshot store (`backups/etcd/` of its secrets bucket, sealed under
 * its KMS key with the backups' own encryption context; src/backup/store.ts).
 */
export async function backupStore(
  ctx: Pick<EnvContext, 'aws' | 'cfg' | 'names'>,
): Promise<import('../backup/store.js').BackupStore> {
  const { BackupStore } = await import('../backup/store.js');
  const { KmsKeyService } = await import('../secrets/keyring.js');
  const kmsKeyId = ctx.names.kmsAlias;
  return new BackupStore({
    s3: await ctx.aws.s3(),
    keys: new KmsKeyService(await ctx.aws.kms(), kmsKeyId),
    bucket: ctx.names.secretsBucket,
    environment: ctx.cfg.name,
    kmsKeyId,
  });
}
