import { UserError } from '../errors.js';
import { log } from '../log.js';
import type { AwsClients } from './clients.js';
import { ec2Sdk } from './clients.js';

/**
 * The node image: NODE_AMI when the environment pins one, otherwise the newest Canonical
 * Ubuntu 24.04 LTS (owner 099720109477, Canonical's account, as published in
 * "Find an Ubuntu image on AWS" in Ubuntu's cloud docs). The local AWS has no Canonical
 * images, so in local mode a stand-in image is registered once and reused.
 */

export const CANONICAL_OWNER = '099720109477';
export const UBUNTU_NAME = 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*';
export const LOCAL_STAND_IN = 'kube-platform-local-ubuntu-noble-24.04';

/**
 * Resolves the AMI id.
 * @param pinned NODE_AMI from the environment file, if set (checked to exist)
 * @param local true against the embedded local AWS (registers a stand-in when needed)
 * @param opts.readOnly make no write: in local mode without a stand-in, plan with an image the local AWS ships
 * @throws UserError when the pinned AMI does not exist or none can be found
 */
export async function resolveAmi(
  aws: AwsClients,
  pinned: string | undefined,
  local: boolean,
  opts: { readOnly?: boolean } = {},
): Promise<string> {
  const ec2 = await aws.ec2();
  const { DescribeImagesCommand, RegisterImageCommand } = await ec2Sdk();
  if (pinned) {
    const r = await ec2.send(new DescribeImagesCommand({ ImageIds: [pinned] })).catch(() => ({ Images: [] }));
    if (!r.Images?.length) throw new UserError(`NODE_AMI ${pinned} does not exist in ${aws.settings.region}`);
    return pinned;
  }
  const newest = async (owners: string[], name: string) => {
    const r = await ec2.send(
      new DescribeImagesCommand({
        Owners: owners,
        Filters: [
          { Name: 'name', Values: [name] },
          { Name: 'state', Values: ['available'] },
        ],
      }),
    );
    return (r.Images ?? []).sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0]
      ?.ImageId;
  };
  const found = await newest([CANONICAL_OWNER], UBUNTU_NAME);
  if (found) return found;
  if (!local) {
    throw new UserError(`no Ubuntu 24.04 image found in ${aws.settings.region}`, {
      hint: 'set NODE_AMI in the environment file',
    });
  }
  const standIn = await newest(['self'], LOCAL_STAND_IN);
  if (standIn) return standIn;
  if (opts.readOnly) {
    // a preview registers nothing: plan with any image the local AWS ships (the stand-in is
    // registered when the change is applied)
    const any = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const id = any.Images?.find((i) => i.RootDeviceName)?.ImageId;
    if (id) return id;
  }
  const r = await ec2.send(
    new RegisterImageCommand({
      Name: LOCAL_STAND_IN,
      Description: 'stand-in for Ubuntu 24.04 in the embedded local AWS',
      Architecture: 'x86_64',
      RootDeviceName: '/dev/sda1',
      VirtualizationType: 'hvm',
    }),
  );
  log.info(`registered a stand-in node image ${r.ImageId} in the local AWS`);
  return r.ImageId!;
}
