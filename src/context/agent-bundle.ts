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

/**
 * Uploads the agent bundle unless an object with its digest is already there.
 * @throws PlatformError when the state bucket refuses the HeadObject (a 403 is not "absent")
 */
export async function publishAgent(
  ctx: EnvContext,
  kmsKeyArn: string,
): Promise<{ key: string; sha256: string }> {
  const agent = await agentBundle();
  const { objectExists, putPlainObject } = await import('../aws/objects.js');
  if (await objectExists(ctx.aws, ctx.names.stateBucket, agent.key)) {
    log.info(`${agent.key} already published`);
  } else {
    await putPlainObject(ctx.aws, {
      bucket: ctx.names.stateBucket,
      key: agent.key,
      body: agent.bytes,
      contentType: 'text/javascript',
      kmsKeyArn,
    });
    log.info(`published ${agent.key}`);
  }
  return { key: agent.key, sha256: agent.sha256 };
}
