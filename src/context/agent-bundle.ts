import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PlatformError } from '../errors.js';
import { log } from '../log.js';
import { displayPath, toolkitRoot } from '../paths.js';
import { sha256 } from '../secrets/envelope.js';
import type { EnvContext } from './environment.js';

/**
 * The node agent bundle (dist/agent/manifest-sync.mjs, built by `npm run build`),
 * content-addressed: its object key carries its SHA-256, which cloud-init verifies before
 * running it. It is published plain (not envelope-encrypted: a node needs the agent
 * before it can decrypt anything) with SSE-KMS at rest into the *state* bucket under
 * agent/, so that the secrets bucket holds nothing but ciphertext; integrity comes from the
 * digest pinned in the launch template's user data.
 */
export async function agentBundle(): Promise<{ bytes: Buffer; sha256: string; key: string }> {
  const file = path.join(toolkitRoot(), 'dist', 'agent', 'manifest-sync.mjs');
  const bytes = await readFile(file).catch(() => {
    throw new PlatformError(`the manifest-sync agent bundle ${displayPath(file)} is missing`, {
      hint: 'build the toolkit first: npm run build',
    });
  });
  const digest = sha256(bytes);
  return { bytes, sha256: digest, key: `agent/manifest-sync-${digest}.mjs` };
}

/** Uploads the agent bundle unless an object with its digest is already there. */
export async function publishAgent(
  ctx: EnvContext,
  kmsKeyArn: string,
): Promise<{ key: string; sha256: string }> {
  const agent = await agentBundle();
  const s3 = await ctx.aws.s3();
  const { HeadObjectCommand, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const exists = await s3.send(new HeadObjectCommand({ Bucket: ctx.names.stateBucket, Key: agent.key })).then(
    () => true,
    () => false,
  );
  if (exists) {
    log.info(`${agent.key} already published`);
  } else {
    await s3.send(
      new PutObjectCommand({
        Bucket: ctx.names.stateBucket,
        Key: agent.key,
        Body: agent.bytes,
        ContentType: 'text/javascript',
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: kmsKeyArn,
      }),
    );
    log.info(`published ${agent.key}`);
  }
  return { key: agent.key, sha256: agent.sha256 };
}
