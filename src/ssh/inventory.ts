import type { AwsClients } from '../aws/clients.js';
import type { InstanceRow } from '../aws/inventory.js';
import { type HostKey, parseConsoleHostKeys } from './known-hosts.js';

/**
 * What agent-setup needs from the environment's inventory (src/aws/inventory.ts): the
 * bastion and the private nodes, and the host keys instances print to their console.
 */

/** True for the environment's bastion: Layer tag `bastion` or Name `<env>-bastion` (platform/terraform main.tf, module "bastion"). */
export function isBastion(row: InstanceRow, env: string): boolean {
  return row.layer === 'bastion' || row.name === `${env}-bastion`;
}

/**
 * The bastion to use: running, with a public address. The bastion ASG holds one instance;
 * while it replaces one, two may run: the first by name, then private IP, is taken (rows
 * come sorted from listInstances) and the others are returned for a warning.
 *
 * @returns undefined when no running bastion has a public address
 */
export function pickBastion(
  rows: InstanceRow[],
  env: string,
): { bastion: InstanceRow & { publicIp: string }; others: InstanceRow[] } | undefined {
  const candidates = rows.filter(
    (r): r is InstanceRow & { publicIp: string } =>
      isBastion(r, env) && r.state === 'running' && !!r.publicIp,
  );
  const [bastion, ...others] = candidates;
  return bastion ? { bastion, others } : undefined;
}

/** The running private nodes (masters, workers): every running non-bastion instance with a private IP. */
export function privateNodes(rows: InstanceRow[], env: string): (InstanceRow & { privateIp: string })[] {
  return rows.filter(
    (r): r is InstanceRow & { privateIp: string } =>
      !isBastion(r, env) && r.state === 'running' && !!r.privateIp,
  );
}

/**
 * The host keys an instance printed to its serial console at first boot, via EC2
 * GetConsoleOutput (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html;
 * the output is base64, the most recent 64 KB) parsed by {@link parseConsoleHostKeys}.
 *
 * @returns [] when the console has no host key block (yet: EC2 publishes it a few minutes after boot)
 */
export async function consoleHostKeys(aws: AwsClients, instanceId: string): Promise<HostKey[]> {
  const { consoleOutput } = await import('../aws/inventory.js');
  return parseConsoleHostKeys(await consoleOutput(aws, instanceId));
}
