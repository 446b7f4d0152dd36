/**
 * Policy checks before apply (DESIGN.md §9, README "policy"): typed rules over the
 * Terraform plan JSON, the environment, the rendered manifests and the node files.
 */
export type { BootstrapView, BucketView } from './bootstrap-view.js';
export {
  type EvaluateOptions,
  evaluatePolicy,
  type PolicyReport,
  type RuleResult,
  type RuleStatus,
} from './evaluate.js';
export { formatPolicyReport } from './format.js';
export { decodeUserData, type NodeFile, type NodeFiles, nodeFilesOf } from './node-files.js';
export { isChange, type PlannedResource, type PlanView, planView } from './plan-json.js';
export { RULES, ruleById } from './rules/index.js';
export type { Finding, PolicyFile, PolicyInput, Rule, Severity, Waiver } from './types.js';
export { parseWaivers, waiverActive } from './waivers.js';
