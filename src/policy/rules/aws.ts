import { block, blocks, isDestroyed, liveOfType } from '../plan-json.js';
import type { Finding, Rule } from '../types.js';
import { admits, ingressRules, isLoadBalancerGroup, portsBeyondWeb, WORLD } from './network.js';

/**
 * AWS rules over the Terraform plan and the bootstrap: CIS AWS Foundations Benchmark
 * v6.0.0, AWS Control Tower proactive controls (CT.EC2.PR.*), AWS Foundational Security
 * Best Practices (FSBP), and kube-platform's own invariants (kp-*).
 */

const isPlay = (env: string) => env.startsWith('play-');

/**
 * The pod network of this platform is flannel with its default VXLAN backend: UDP 8472 among
 * all nodes (https://github.com/flannel-io/flannel/blob/master/Documentation/backends.md#vxlan,
 * platform/manifests/secure/addons/flannel). Ports of the other common pod networks, which
 * no node needs open while flannel is the pod network.
 */
export const FOREIGN_POD_NETWORK_PORTS: { name: string; protocol: 'tcp' | 'udp'; port: number }[] = [
  { name: 'BGP (Calico)', protocol: 'tcp', port: 179 },
  { name: 'VXLAN IANA port (Calico)', protocol: 'udp', port: 4789 },
  { name: 'Geneve (Cilium, OVN)', protocol: 'udp', port: 6081 },
  { name: 'WireGuard (Calico)', protocol: 'udp', port: 51820 },
  { name: 'WireGuard IPv6 (Calico)', protocol: 'udp', port: 51821 },
  { name: 'WireGuard (Cilium)', protocol: 'udp', port: 51871 },
  { name: 'Typha (Calico)', protocol: 'tcp', port: 5473 },
  { name: 'cilium-health', protocol: 'tcp', port: 4240 },
];

/**
 * The actions of every Allow statement of an IAM policy document that are wildcards (`*` or
 * `?` anywhere, e.g. `s3:*`, `kms:ReEncrypt*`, `*`) or that allow by exclusion (NotAction).
 * A document that does not parse as JSON is reported as such. Policy grammar:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
 */
export function wildcardActions(document: unknown): string[] {
  let doc: unknown = document;
  if (typeof document === 'string') {
    try {
      doc = JSON.parse(document);
    } catch {
      return ['(not a JSON policy document)'];
    }
  }
  const statements = (doc as { Statement?: unknown })?.Statement;
  const out: string[] = [];
  for (const s of [statements ?? []].flat() as { Effect?: string; Action?: unknown; NotAction?: unknown }[]) {
    if (s?.Effect !== 'Allow') continue;
    if (s.NotAction !== undefined) out.push(`NotAction ${JSON.stringify(s.NotAction)}`);
    for (const a of [s.Action ?? []].flat()) if (typeof a === 'string' && /[*?]/.test(a)) out.push(a);
  }
  return out;
}

export const awsRules: Rule[] = [
  {
    id: 'kp-iam-no-wildcard-action',
    severity: 'high',
    title: "the node roles' inline policies allow no wildcard action",
    rationale:
      "Each node role's components (cloud-controller-manager, EBS CSI controller, ECR pulls, manifest-sync) get exactly the actions of their upstream published policies (platform/terraform/modules/iam); a wildcard action (s3:*, kms:ReEncrypt*) silently grants every action the service adds later.",
    standard:
      'AWS Foundational Security Best Practices IAM.21 (no wildcard actions for services); CIS AWS Foundations Benchmark v6.0.0 1.15',
    needs: ['plan'],
    check: ({ plan }) =>
      liveOfType(plan, 'aws_iam_role_policy').flatMap((r) =>
        wildcardActions(r.after.policy).map((a) => ({
          resource: r.address,
          attribute: 'policy',
          message: `allows ${a}`,
        })),
      ),
  },
  {
    id: 'cis-aws-6.3',
    severity: 'critical',
    title: 'no ingress from 0.0.0.0/0 or ::/0 to the remote administration ports 22 and 3389',
    rationale:
      "SSH and RDP open to the internet are scanned within minutes; the bastion should admit only the operators' networks (SSH_ACCESS_LIST).",
    standard: 'CIS AWS Foundations Benchmark v6.0.0 6.3',
    needs: ['plan'],
    check: ({ plan }) =>
      ingressRules(plan)
        .filter((i) => i.cidr && WORLD.includes(i.cidr) && (admits(i, 22) || admits(i, 3389)))
        .map((i) => ({
          resource: i.address,
          attribute: i.attribute,
          message: `${i.cidr} may reach ${admits(i, 22) ? 'port 22 (SSH)' : 'port 3389 (RDP)'}${i.group ? ` on ${i.group}` : ''}`,
        })),
  },
  {
    id: 'ct-ec2-pr-1',
    severity: 'high',
    title: 'launch templates and instances require IMDSv2 (http_tokens = "required")',
    rationale:
      "IMDSv1 answers any GET, so an SSRF in a pod or a node service leaks the node role's credentials; IMDSv2 needs a PUT-issued session token.",
    standard: 'AWS Control Tower CT.EC2.PR.1 (FSBP EC2.8)',
    needs: ['plan'],
    check: ({ plan }) => {
      const out: Finding[] = [];
      for (const type of ['aws_launch_template', 'aws_instance']) {
        for (const r of liveOfType(plan, type)) {
          const tokens = block(r.after.metadata_options)?.http_tokens;
          if (tokens !== 'required')
            out.push({
              resource: r.address,
              attribute: 'metadata_options.http_tokens',
              message: `is ${tokens === undefined ? 'unset (IMDSv1 allowed)' : JSON.stringify(tokens)}, must be "required"`,
            });
        }
      }
      return out;
    },
  },
  {
    id: 'ct-ec2-pr-2',
    severity: 'medium',
    title: 'the IMDS PUT response hop limit is 1',
    rationale:
      "With a hop limit above 1 the metadata token reaches containers behind the node's network namespace, handing them the node role.",
    standard: 'AWS Control Tower CT.EC2.PR.2',
    needs: ['plan'],
    check: ({ plan }) => {
      const out: Finding[] = [];
      for (const type of ['aws_launch_template', 'aws_instance']) {
        for (const r of liveOfType(plan, type)) {
          const hop = block(r.after.metadata_options)?.http_put_response_hop_limit;
          if (typeof hop !== 'number' || hop > 1)
            out.push({
              resource: r.address,
              attribute: 'metadata_options.http_put_response_hop_limit',
              message: `is ${hop === undefined || hop === null ? 'unset' : String(hop)}, must be 1`,
            });
        }
      }
      return out;
    },
  },
  {
    id: 'ct-ec2-pr-3',
    severity: 'high',
    title: 'world-open ingress (0.0.0.0/0, ::/0) only to ports 80 and 443',
    rationale: 'Every other port open to the internet is attack surface no client needs.',
    standard: 'AWS Control Tower CT.EC2.PR.3 (FSBP EC2.18)',
    needs: ['plan'],
    check: ({ plan }) =>
      ingressRules(plan)
        .filter((i) => i.cidr && WORLD.includes(i.cidr))
        .flatMap((i) => {
          const beyond = portsBeyondWeb(i);
          return beyond === undefined
            ? []
            : [
                {
                  resource: i.address,
                  attribute: i.attribute,
                  message: `${i.cidr} may reach port ${beyond}`,
                },
              ];
        }),
  },
  {
    id: 'ct-ec2-pr-4',
    severity: 'high',
    title: "world-open ingress only on load balancers' security groups",
    rationale:
      'Instances are reached through a load balancer or the bastion; a node group open to the internet bypasses both.',
    standard: 'AWS Control Tower CT.EC2.PR.4',
    needs: ['plan'],
    check: ({ plan }) =>
      ingressRules(plan)
        .filter((i) => i.cidr && WORLD.includes(i.cidr) && !isLoadBalancerGroup(plan, i.group))
        .map((i) => ({
          resource: i.address,
          attribute: i.attribute,
          message: `${i.cidr} reaches ${i.group ?? 'a security group'}, which is not a load balancer's (tag Attachment=load-balancer)`,
        })),
  },
  {
    id: 'ct-ec2-pr-7',
    severity: 'high',
    title: "EBS volumes are encrypted: etcd volumes and every launch template's block devices",
    rationale:
      'etcd holds every Secret of the cluster; node disks hold kubelet credentials and container data.',
    standard: 'AWS Control Tower CT.EC2.PR.7 (FSBP EC2.3)',
    needs: ['plan'],
    check: ({ plan }) => {
      const out: Finding[] = [];
      for (const v of liveOfType(plan, 'aws_ebs_volume')) {
        if (v.after.encrypted !== true)
          out.push({ resource: v.address, attribute: 'encrypted', message: 'the volume is not encrypted' });
      }
      for (const lt of liveOfType(plan, 'aws_launch_template')) {
        blocks(lt.after.block_device_mappings).forEach((m, n) => {
          const ebs = block(m.ebs);
          if (ebs && ebs.encrypted !== 'true' && ebs.encrypted !== true)
            out.push({
              resource: lt.address,
              attribute: `block_device_mappings[${n}].ebs.encrypted`,
              message: `${String(m.device_name ?? 'a device')} is not encrypted`,
            });
        });
      }
      for (const i of liveOfType(plan, 'aws_instance')) {
        const root = block(i.after.root_block_device);
        if (root && root.encrypted !== true)
          out.push({
            resource: i.address,
            attribute: 'root_block_device.encrypted',
            message: 'not encrypted',
          });
      }
      return out;
    },
  },
  {
    id: 'ct-ec2-pr-9',
    severity: 'high',
    title: 'no automatically assigned public IP addresses, except on the bastion',
    rationale:
      'Masters and workers sit in private subnets behind NAT; a public address on one makes it reachable around the bastion and the load balancers.',
    standard: 'AWS Control Tower CT.EC2.PR.9 (FSBP EC2.15)',
    needs: ['plan'],
    check: ({ plan, env }) => {
      const out: Finding[] = [];
      for (const lt of liveOfType(plan, 'aws_launch_template')) {
        const bastion = lt.after.name === `${env.name}-bastion`;
        blocks(lt.after.network_interfaces).forEach((ni, n) => {
          const pub = ni.associate_public_ip_address;
          if ((pub === 'true' || pub === true) && !bastion)
            out.push({
              resource: lt.address,
              attribute: `network_interfaces[${n}].associate_public_ip_address`,
              message: `${String(lt.after.name)} is not the bastion (${env.name}-bastion)`,
            });
        });
      }
      for (const s of liveOfType(plan, 'aws_subnet')) {
        if (s.after.map_public_ip_on_launch === true)
          out.push({
            resource: s.address,
            attribute: 'map_public_ip_on_launch',
            message: 'every instance launched in the subnet gets a public address',
          });
      }
      for (const i of liveOfType(plan, 'aws_instance')) {
        if (i.after.associate_public_ip_address === true)
          out.push({
            resource: i.address,
            attribute: 'associate_public_ip_address',
            message: 'public address',
          });
      }
      return out;
    },
  },
  {
    id: 'kp-etcd-volume-kms',
    severity: 'medium',
    title: "etcd volumes are encrypted under the environment's customer-managed KMS key",
    rationale:
      "With the AWS-managed EBS key anyone allowed to use EBS in the account can attach a snapshot of etcd; the environment key's policy limits who can.",
    standard: 'kube-platform DESIGN.md §7; FSBP EC2.3 with a customer-managed key',
    needs: ['plan'],
    check: ({ plan }) =>
      liveOfType(plan, 'aws_ebs_volume')
        .filter((v) => (v.after.tags as Record<string, string> | undefined)?.EtcdMember !== undefined)
        .filter((v) => !v.after.kms_key_id && v.afterUnknown.kms_key_id !== true)
        .map((v) => ({
          resource: v.address,
          attribute: 'kms_key_id',
          message: 'no customer-managed KMS key',
        })),
  },
  {
    id: 'kp-etcd-protected',
    severity: 'critical',
    title: "outside play-*, a plan never destroys or replaces an etcd member's volume or ENI",
    rationale:
      "The EBS volume holds the member's data and the ENI its address; destroying either loses the member (and with two, quorum). The equivalent of prevent_destroy, which Terraform cannot set per environment.",
    standard: 'kube-platform DESIGN.md §6 (member identity survives replacement); Terraform prevent_destroy',
    needs: ['plan'],
    check: ({ plan, env }) =>
      isPlay(env.name)
        ? []
        : plan.resources
            .filter(
              (r) => (r.type === 'aws_ebs_volume' || r.type === 'aws_network_interface') && isDestroyed(r),
            )
            .filter((r) => (r.before?.tags as Record<string, string> | undefined)?.EtcdMember !== undefined)
            .map((r) => ({
              resource: r.address,
              attribute: 'lifecycle',
              message: `the plan would ${r.actions.includes('create') ? 'replace' : 'destroy'} etcd member ${(r.before!.tags as Record<string, string>).EtcdMember}'s ${r.type === 'aws_ebs_volume' ? 'data volume' : 'ENI'}`,
            })),
  },
  {
    id: 'kp-pod-network-ports',
    severity: 'medium',
    title:
      'no security-group ports for pod networks that are not in use (the pod network is flannel: 8472/udp)',
    rationale:
      'Open ports of an absent Calico/Cilium/WireGuard are attack surface with no purpose; a later add-on listening there would be exposed unreviewed.',
    standard:
      'CIS AWS Foundations Benchmark v6.0.0 6.x (least-privilege security groups); flannel backends.md',
    needs: ['plan'],
    check: ({ plan }) =>
      ingressRules(plan)
        .filter((i) => i.protocol !== '-1' && i.protocol !== 'all')
        .flatMap((i) =>
          FOREIGN_POD_NETWORK_PORTS.filter((p) => admits(i, p.port, p.protocol)).map((p) => ({
            resource: i.address,
            attribute: 'from_port',
            message: `opens ${p.port}/${p.protocol} (${p.name})${i.group ? ` on ${i.group}` : ''}; flannel uses only 8472/udp`,
          })),
        ),
  },
  {
    id: 'fsbp-s3-block-public-access',
    severity: 'critical',
    title: 'both buckets (Terraform state, secrets) block all public access',
    rationale:
      "The state holds resource secrets and the secrets bucket the cluster's keys; one public ACL or policy exposes them.",
    standard: 'CIS AWS Foundations Benchmark v6.0.0 2.1.4; FSBP S3.8',
    needs: ['bootstrap'],
    check: ({ bootstrap }) =>
      bootstrap.buckets.flatMap((b) =>
        Object.entries(b.publicAccessBlock)
          .filter(([, on]) => !on)
          .map(([setting]) => ({
            resource: `s3://${b.name}`,
            attribute: `public_access_block.${setting}`,
            message: `the ${b.role} bucket does not set ${setting}`,
          })),
      ),
  },
  {
    id: 'fsbp-s3-versioning',
    severity: 'high',
    title: 'both buckets have versioning enabled',
    rationale:
      'Versions are the rollback of a bad publish (manifest-sync reads by VersionId) and of a corrupted state file.',
    standard: 'FSBP S3.14; kube-platform DESIGN.md §4',
    needs: ['bootstrap'],
    check: ({ bootstrap }) =>
      bootstrap.buckets
        .filter((b) => b.versioning !== 'Enabled')
        .map((b) => ({
          resource: `s3://${b.name}`,
          attribute: 'versioning.status',
          message: `the ${b.role} bucket's versioning is ${b.versioning ?? 'off'}`,
        })),
  },
  {
    id: 'fsbp-s3-kms-encryption',
    severity: 'high',
    title: 'both buckets are default-encrypted with SSE-KMS',
    rationale:
      "Objects written by any tool (terraform's state included) are encrypted at rest under the environment key.",
    standard: 'FSBP S3.17',
    needs: ['bootstrap'],
    check: ({ bootstrap }) =>
      bootstrap.buckets
        .filter((b) => b.encryption?.algorithm !== 'aws:kms' || !b.encryption.kmsKeyId)
        .map((b) => ({
          resource: `s3://${b.name}`,
          attribute: 'server_side_encryption_configuration',
          message: `the ${b.role} bucket's default encryption is ${b.encryption ? b.encryption.algorithm : 'not set'}`,
        })),
  },
  {
    id: 'cis-aws-3.6',
    severity: 'medium',
    title: "the environment's KMS key rotates automatically",
    rationale:
      'Rotation limits what one leaked key version decrypts; the envelope format re-wraps data keys on use.',
    standard: 'CIS AWS Foundations Benchmark v6.0.0 3.6; FSBP KMS.4',
    needs: ['bootstrap'],
    check: ({ bootstrap }) =>
      bootstrap.key.rotation
        ? []
        : [{ resource: bootstrap.key.alias, attribute: 'key_rotation_enabled', message: 'rotation is off' }],
  },
];
