import type { KMSClient } from '@aws-sdk/client-kms';
import { kmsSdk } from '../aws/sdk.js';
import { ExitCode, IntegrityError, PlatformError } from '../errors.js';
import { type DataKey, encryptionContext, sha256 } from './envelope.js';

/**
 * Data keys for the layers of one environment, from KMS, cached so that a publish or a
 * fetch makes O(1) KMS requests per layer instead of one per file (DESIGN.md §4).
 *
 * A layer keeps one data key: the first publish asks KMS GenerateDataKey (AES_256) with
 * the encryption context {environment, layer}; later publishes reuse the key found in the
 * layer's index (one kms:Decrypt). Plaintext keys live only in memory.
 */

/**
 * KMS refused to decrypt a layer's data key with AccessDeniedException. The object itself
 * was read, so this is either a damaged encrypted data key (a local AWS answers a tampered
 * CiphertextBlob this way) or a key policy that excludes the caller for this layer's
 * encryption context; either way the layer cannot be verified. Exit code 4.
 */
export class DecryptDeniedError extends PlatformError {
  // not an IntegrityError subclass: the agent keeps retrying it (a key policy can be fixed)
  override readonly exitCode: number = ExitCode.integrity;
}

/** The two KMS operations envelope encryption needs; a narrow seam for tests. */
export interface KeyService {
  generateDataKey(context: Record<string, string>): Promise<DataKey>;
  decryptDataKey(encrypted: Buffer, context: Record<string, string>): Promise<Buffer>;
}

/** KeyService over a real KMS client and the environment's key id/alias/ARN. */
export class KmsKeyService implements KeyService {
  /** number of KMS requests made (benchmarks report it) */
  requests = 0;
  constructor(
    private readonly kms: KMSClient,
    private readonly keyId: string,
  ) {}

  async generateDataKey(context: Record<string, string>): Promise<DataKey> {
    const { GenerateDataKeyCommand } = await kmsSdk();
    this.requests++;
    const r = await this.kms.send(
      new GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: context }),
    );
    return { plaintext: Buffer.from(r.Plaintext!), encrypted: Buffer.from(r.CiphertextBlob!) };
  }

  async decryptDataKey(encrypted: Buffer, context: Record<string, string>): Promise<Buffer> {
    const { DecryptCommand } = await kmsSdk();
    this.requests++;
    try {
      const r = await this.kms.send(
        new DecryptCommand({ CiphertextBlob: encrypted, EncryptionContext: context, KeyId: this.keyId }),
      );
      return Buffer.from(r.Plaintext!);
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'InvalidCiphertextException' || name === 'IncorrectKeyException') {
        throw new IntegrityError(
          `could not decrypt layer "${context.layer}" of environment "${context.environment}": KMS refused its data key (${name}): it is damaged or was encrypted for another environment or layer`,
          { cause: e },
        );
      }
      if (name === 'AccessDeniedException') {
        throw new DecryptDeniedError(
          `could not decrypt layer "${context.layer}": KMS denied kms:Decrypt of its data key (AccessDeniedException): the encrypted data key is damaged, or these credentials may not decrypt layer "${context.layer}"`,
          { cause: e },
        );
      }
      throw e;
    }
  }
}

/** Per-environment cache of layer data keys. */
export class Keyring {
  readonly #decrypted = new Map<string, Buffer>();
  constructor(
    readonly service: KeyService,
    readonly environment: string,
  ) {}

  /**
   * The plaintext of an encrypted data key of `layer`, asking KMS at most once per
   * distinct encrypted key.
   * @throws IntegrityError when KMS refuses it for this environment/layer context
   */
  async decrypt(layer: string, encrypted: Buffer): Promise<Buffer> {
    const id = `${layer}:${sha256(encrypted)}`;
    let key = this.#decrypted.get(id);
    if (!key) {
      key = await this.service.decryptDataKey(
        encrypted,
        encryptionContext({ environment: this.environment, layer }),
      );
      this.#decrypted.set(id, key);
    }
    return key;
  }

  /**
   * The data key to encrypt new objects of `layer` with: the layer's existing key (given
   * its encrypted form from the current index) or a fresh one from KMS.
   */
  async forLayer(layer: string, existing?: Buffer): Promise<DataKey> {
    if (existing) return { plaintext: await this.decrypt(layer, existing), encrypted: existing };
    const key = await this.service.generateDataKey(
      encryptionContext({ environment: this.environment, layer }),
    );
    this.#decrypted.set(`${layer}:${sha256(key.encrypted)}`, key.plaintext);
    return key;
  }
}
