import type { EnvConfig } from '../config/load.js';
import type { BootstrapView } from './bootstrap-view.js';
import type { NodeFiles } from './node-files.js';
import type { PlanView } from './plan-json.js';

/**
 * The policy engine's vocabulary (DESIGN.md §9): typed rules over the Terraform plan
 * (`terraform show -json`), the validated environment, the rendered manifests and the node
 * files (kubelet configuration, scripts) inside the planned launch templates' user data.
 */

/** How bad a violation is. Every severity refuses outside `play-*`; the order is for display. */
export type Severity = 'critical' | 'high' | 'medium' | 'low';

export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low'];

/** What a rule reads. A rule whose input is absent is reported as "not evaluated", never as passed. */
export type PolicyInputKind = 'plan' | 'manifests' | 'nodes' | 'bootstrap' | 'env';

/** One rendered file of the secrets tree (layer-relative path, e.g. `secure/manifests/etcd.yaml`). */
export interface PolicyFile {
  path: string;
  content: string;
  /** POSIX mode the file is published with, e.g. 0o600 */
  mode: number;
}

/** Everything one evaluation reads. Pure data: evaluation makes no I/O. */
export interface PolicyInput {
  env: EnvConfig;
  /** the Terraform plan; undefined when none was computed (plan rules are then "not evaluated") */
  plan?: PlanView;
  /** rendered manifests and configs of the secrets tree */
  manifests?: PolicyFile[];
  /** node files per role, decoded from the planned launch templates (derived from `plan`) */
  nodes?: NodeFiles;
  /** the KMS key and buckets as they will be after bootstrap */
  bootstrap?: BootstrapView;
}

/** One violation: which resource, which attribute, what is wrong. */
export interface Finding {
  /** Terraform address (`module.network.aws_vpc_security_group_ingress_rule.this["…"]`), file path or env key */
  resource: string;
  /** attribute path inside the resource, e.g. `metadata_options.http_tokens` or `--anonymous-auth` */
  attribute: string;
  message: string;
}

/** A typed policy rule. `check` is pure and returns no finding when the input complies. */
export interface Rule {
  /** stable id, e.g. `cis-aws-6.3`; waivers and fixtures name it */
  id: string;
  severity: Severity;
  /** one line: what it checks */
  title: string;
  /** why it matters */
  rationale: string;
  /** the control it maps to, e.g. "CIS AWS Foundations v6.0.0 6.3" */
  standard: string;
  /** the inputs `check` needs; any missing = not evaluated */
  needs: PolicyInputKind[];
  check(input: Required<PolicyInput>): Finding[];
}

/** A waiver from the environment file (POLICY_WAIVERS). */
export interface Waiver {
  ruleId: string;
  /** last day the waiver holds (inclusive), `YYYY-MM-DD`, UTC */
  expires: string;
  reason: string;
}
