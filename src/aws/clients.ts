import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { UserError } from '../errors.js';
import { sdkPackage } from './sdk.js';
import { StorageClients } from './storage-clients.js';

export { type AwsSettings, awsSettings, StorageClients } from './storage-clients.js';

/** `@aws-sdk/client-ec2`, loaded as src/aws/sdk.ts `sdkPackage` says (by `require` in the CLI). */
export function ec2Sdk(): Promise<typeof import('@aws-sdk/client-ec2')> {
  return sdkPackage('@aws-sdk/client-ec2', () => import('@aws-sdk/client-ec2'));
}

/** `@aws-sdk/client-auto-scaling`, loaded as {@link sdkPackage} says. */
export function autoScalingSdk(): Promise<typeof import('@aws-sdk/client-auto-scaling')> {
  return sdkPackage('@aws-sdk/client-auto-scaling', () => import('@aws-sdk/client-auto-scaling'));
}

/** `@aws-sdk/client-elastic-load-balancing-v2`, loaded as {@link sdkPackage} says. */
export function elbv2Sdk(): Promise<typeof import('@aws-sdk/client-elastic-load-balancing-v2')> {
  return sdkPackage(
    '@aws-sdk/client-elastic-load-balancing-v2',
    () => import('@aws-sdk/client-elastic-load-balancing-v2'),
  );
}

/** `@aws-sdk/client-sts`, loaded as {@link sdkPackage} says. */
export function stsSdk(): Promise<typeof import('@aws-sdk/client-sts')> {
  return sdkPackage('@aws-sdk/client-sts', () => import('@aws-sdk/client-sts'));
}

/** `@aws-sdk/credential-providers`, loaded as {@link sdkPackage} says. */
export function credentialProvidersSdk(): Promise<typeof import('@aws-sdk/credential-providers')> {
  return sdkPackage('@aws-sdk/credential-providers', () => import('@aws-sdk/credential-providers'));
}

/**
 * The one place AWS clients are built (STYLE.md §4): region, credentials chain, endpoint
 * and path-style addressing are decided here once; commands receive narrow interfaces
 * (SecretStore, Inventory...) built on these clients, never construct their own.
 *
 * Credentials follow the AWS SDK default chain (environment variables incl.
 * AWS_SESSION_TOKEN, SSO, assume-role with MFA, credential_process, IMDS), with the
 * environment's profile as the profile to read when the caller exports no AWS_PROFILE.
 * The endpoint is the standard `AWS_ENDPOINT_URL` (the embedded local AWS sets it); with a
 * custom endpoint S3 uses path-style addressing, as S3-compatible servers expect.
 */

/** The caller's identity (STS GetCallerIdentity). */
export interface Identity {
  account: string;
  arn: string;
}

/** Lazily-built, memoised AWS clients (S3, KMS and the operator's) for one region/endpoint/credential set. */
export class AwsClients extends StorageClients {
  #credentials?: AwsCredentialIdentityProvider;

  protected override async credentialProvider(): Promise<AwsCredentialIdentityProvider> {
    const fixed = this.settings.credentials;
    if (fixed) return async () => fixed;
    if (!this.#credentials) {
      const { fromNodeProviderChain } = await credentialProvidersSdk();
      const useProfile = !process.env.AWS_PROFILE && !process.env.AWS_ACCESS_KEY_ID && this.settings.profile;
      this.#credentials = fromNodeProviderChain(useProfile ? { profile: this.settings.profile } : {});
    }
    return this.#credentials;
  }

  ec2(): Promise<EC2Client> {
    return this.get('ec2', async () => new (await ec2Sdk()).EC2Client(await this.common()));
  }

  autoscaling(): Promise<AutoScalingClient> {
    return this.get(
      'autoscaling',
      async () => new (await autoScalingSdk()).AutoScalingClient(await this.common()),
    );
  }

  elbv2(): Promise<ElasticLoadBalancingV2Client> {
    return this.get(
      'elbv2',
      async () => new (await elbv2Sdk()).ElasticLoadBalancingV2Client(await this.common()),
    );
  }

  sts(): Promise<STSClient> {
    return this.get('sts', async () => new (await stsSdk()).STSClient(await this.common()));
  }

  /**
   * Who we act as (STS GetCallerIdentity), memoised.
   * @throws UserError when no credentials can be found or they are rejected
   */
  async identity(): Promise<Identity> {
    return this.get('identity', async () => {
      const { GetCallerIdentityCommand } = await stsSdk();
      try {
        const r = await (await this.sts()).send(new GetCallerIdentityCommand({}));
        return { account: r.Account!, arn: r.Arn! };
      } catch (e) {
        throw new UserError(`cannot establish AWS credentials: ${(e as Error).message}`, {
          cause: e,
          hint: this.settings.profile
            ? `export AWS_* credentials or configure the AWS profile "${this.settings.profile}" (aws configure sso --profile ${this.settings.profile})`
            : 'export AWS_* credentials or set AWS_PROFILE',
        });
      }
    });
  }
}

/**
 * Refuses to act in the wrong account: when the environment pins AWS_ACCOUNT_ID, the
 * caller's identity must belong to it.
 * @throws UserError naming both accounts
 */
export function assertAccount(identity: Identity, expected: string | undefined, envName: string): void {
  if (expected && identity.account !== expected) {
    throw new UserError(
      `environment ${envName} belongs to AWS account ${expected}, but the credentials are for ${identity.account} (${identity.arn})`,
      { hint: `use the profile for ${envName}, e.g. AWS_PROFILE=${envName}` },
    );
  }
}
