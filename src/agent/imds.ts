import os from 'node:os';
import { log } from '../log.js';
import { request } from './http.js';

/**
 * The node id manifest-sync reports under: the EC2 instance id from the instance metadata
 * service, version 2 (session-oriented: PUT /latest/api/token with the header
 * X-aws-ec2-metadata-token-ttl-seconds, then GET /latest/meta-data/instance-id with the header
 * X-aws-ec2-metadata-token). Source: EC2 user guide, "Use the Instance Metadata Service to
 * access instance metadata" (IMDSv2).
 *
 * The endpoint is http://169.254.169.254 unless AWS_EC2_METADATA_SERVICE_ENDPOINT says
 * otherwise, and IMDS is not asked at all when AWS_EC2_METADATA_DISABLED=true — the same
 * variables the AWS SDKs honour.
 */

const DEFAULT_ENDPOINT = 'http://169.254.169.254';

/**
 * Asks IMDSv2 for the instance id.
 * @param timeoutMs per request (IMDS answers in milliseconds on EC2; off EC2 nothing answers)
 * @returns the instance id, or undefined when there is no IMDS (disabled, unreachable, refused)
 */
export async function instanceId(
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 1000,
): Promise<string | undefined> {
  if ((env.AWS_EC2_METADATA_DISABLED ?? '').toLowerCase() === 'true') return undefined;
  const base = (env.AWS_EC2_METADATA_SERVICE_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  try {
    const t = await request(`${base}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
      timeoutMs,
    });
    if (t.status !== 200) return undefined;
    const r = await request(`${base}/latest/meta-data/instance-id`, {
      headers: { 'X-aws-ec2-metadata-token': t.body },
      timeoutMs,
    });
    if (r.status !== 200) return undefined;
    const id = r.body.trim();
    return /^i-[0-9a-f]{8,32}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The node id: `given` (--node-id) when set, else the instance id from IMDSv2, else the host
 * name with a warning (a node off EC2, e.g. a test machine).
 *
 * IMDS is asked up to `attempts` times, `delaysMs` apart: a master whose first lookup missed
 * (a slow boot, a CPU-starved host) would otherwise report under its host name for its whole
 * life, and the roll's quorum gate and `validate`, which look for its instance id, would never
 * see it. Not asked at all when AWS_EC2_METADATA_DISABLED=true.
 * @param o.attempts @default 3 (worst case off EC2: about 3 × 2 s timeouts + 3 s of delays)
 */
export async function resolveNodeId(
  given: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  o: { attempts?: number; delaysMs?: number[]; sleep?: (ms: number) => Promise<void> } = {},
): Promise<string> {
  if (given) return given;
  const attempts = (env.AWS_EC2_METADATA_DISABLED ?? '').toLowerCase() === 'true' ? 1 : (o.attempts ?? 3);
  const delays = o.delaysMs ?? [1000, 2000];
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(delays[Math.min(i - 1, delays.length - 1)] ?? 1000);
    const id = await instanceId(env);
    if (id) return id;
  }
  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-');
  log.warn(`no instance metadata (IMDSv2) answered: reporting as node "${host}" (give --node-id to choose)`);
  return host;
}
