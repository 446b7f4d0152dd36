import type { KMSClient } from '@aws-sdk/client-kms';
import type { S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { kmsSdk, s3Sdk } from './sdk.js';

/**
 * The S3 and KMS clients, built in one place (STYLE.md §4): all the node agent needs, so its
 * bundle carries no EC2, Auto Scaling, ELB or STS client. {@link AwsClients} (clients.ts)
 * adds the operator's clients on top. Region, credentials chain, endpoint and path-style
 * addressing: see clients.ts.
 */

export interface AwsSettings {
  region: string;
  /** profile to use when neither AWS_PROFILE nor AWS_ACCESS_KEY_ID is exported */
  profile?: string;
  /** custom endpoint (AWS_ENDPOINT_URL, or the embedded local AWS's); undefined = real AWS */
  endpoint?: string;
  /** static credentials (the embedded local AWS's); undefined = the SDK's default chain */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** The embedded local AWS as the clients see it: its endpoint and its variables (src/aws/local.ts LocalAws). */
export interface LocalEndpoint {
  endpoint: string;
  env: Record<string, string>;
}

/**
 * The clients' settings: the environment file's region and profile; the endpoint and static
 * credentials of the embedded local AWS when `local` is given (passed explicitly: the
 * process environment is not changed), else the standard AWS_ENDPOINT_URL when the caller
 * exported it.
 * @param local the local AWS's endpoint and variables (src/aws/local.ts LocalAws)
 */
export function awsSettings(region: string, profile?: string, local?: LocalEndpoint): AwsSettings {
  const endpoint = local?.endpoint ?? (process.env.AWS_ENDPOINT_URL || undefined);
  const id = local?.env.AWS_ACCESS_KEY_ID;
  const secret = local?.env.AWS_SECRET_ACCESS_KEY;
  return {
    region,
    ...(profile ? { profile } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(id && secret ? { credentials: { accessKeyId: id, secretAccessKey: secret } } : {}),
  };
}

/** Lazily-built, memoised S3 and KMS clients for one region/endpoint/credential set. */
export class StorageClients {
  readonly settings: AwsSettings;
  readonly #cache = new Map<string, unknown>();

  constructor(settings: AwsSettings) {
    this.settings = settings;
  }

  /**
   * The credentials provider the clients share; undefined = each client's SDK default chain
   * (environment, shared config and SSO files, ECS/EC2 instance metadata), which is what a
   * node has (its instance profile, through IMDS). {@link AwsClients} shares one provider
   * and honours the environment's profile.
   */
  protected async credentialProvider(): Promise<AwsCredentialIdentityProvider | undefined> {
    const c = this.settings.credentials;
    return c ? async () => c : undefined;
  }

  protected async common() {
    const credentials = await this.credentialProvider();
    return {
      region: this.settings.region,
      ...(credentials ? { credentials } : {}),
      ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
      maxAttempts: 5,
    };
  }

  protected async get<T>(name: string, make: () => Promise<T>): Promise<T> {
    let c = this.#cache.get(name) as T | undefined;
    if (!c) {
      c = await make();
      this.#cache.set(name, c);
    }
    return c;
  }

  s3(): Promise<S3Client> {
    return this.get('s3', async () => {
      const { S3Client } = await s3Sdk();
      return new S3Client({
        ...(await this.common()),
        forcePathStyle: Boolean(this.settings.endpoint),
        // No CRC32 of every body unless the operation requires one (the SDK's default before
        // v3.729): every object this client writes is checked end to end already (secrets and
        // indexes by AES-GCM and the index's SHA-256, the agent bundle by sha256sum on the
        // node) and TLS protects the transfer; the checksums took 17-25% of the SDK's CPU per
        // 4 KB GetObject/PutObject against a no-op server (2026-12-02).
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
    });
  }

  kms(): Promise<KMSClient> {
    return this.get('kms', async () => new (await kmsSdk()).KMSClient(await this.common()));
  }

  /** Releases sockets (tests, short-lived commands). */
  destroy(): void {
    for (const c of this.#cache.values()) {
      if (c && typeof (c as { destroy?: () => void }).destroy === 'function')
        (c as { destroy: () => void }).destroy();
    }
    this.#cache.clear();
  }
}
