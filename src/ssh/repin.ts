import { bastionAlias } from './config.js';
import { type HostKey, type PinResult, pinHostKeys } from './known-hosts.js';

/** What {@link repinBastion} needs. */
export interface RepinOptions {
  env: string;
  /** the replacement bastion's instance id */
  instanceId: string;
  /** the environment's known_hosts (`~/.ssh/kube-platform/<env>.known_hosts`, src/ssh/config.ts) */
  knownHosts: string;
  /** the instance's host keys from its console output ([] while EC2 has not published them) */
  readKeys: (instanceId: string) => Promise<HostKey[]>;
  /** give up after this many seconds */
  timeoutS: number;
  /** seconds between reads */
  pollS: number;
  /** injected for tests @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
  /** injected for tests @default Date.now */
  now?: () => number;
}

/**
 * Re-pins the bastion's host key after `roll bastion` replaced it (issue 13 item 2): reads the
 * replacement's host keys from its EC2 console output — the keys cloud-init printed at first
 * boot, through the authenticated EC2 API, so no trust on first use — until they appear or
 * `timeoutS` passes (EC2 publishes console output a few minutes after boot), then replaces
 * what known_hosts held for the bastion's alias (`bastion-<env>`) with them.
 *
 * Until the new key is pinned the old pin stays: ssh refuses the new bastion (fails closed).
 *
 * @returns what was pinned, or undefined when no key appeared in time
 * @throws PlatformError from {@link pinHostKeys} (invalid key, ssh-keygen failed)
 */
export async function repinBastion(o: RepinOptions): Promise<PinResult | undefined> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = o.now ?? Date.now;
  const deadline = now() + o.timeoutS * 1000;
  for (;;) {
    const keys = await o.readKeys(o.instanceId);
    if (keys.length > 0) {
      const [result] = await pinHostKeys(o.knownHosts, new Map([[bastionAlias(o.env), keys]]));
      return result;
    }
    if (now() + o.pollS * 1000 > deadline) return undefined;
    await sleep(o.pollS * 1000);
  }
}
