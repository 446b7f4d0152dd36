import { isDeepStrictEqual } from 'node:util';
import { isChange, type PlannedResource } from '../policy/plan-json.js';

/**
 * What the upgrade's workers phase may apply of a Terraform plan (src/commands/upgrade.ts
 * applyLaunchTemplates): the target versions reach the nodes only through their user data,
 * so a plan at the target may change
 *
 * - `aws_launch_template` resources in place (a new version with the new user data), and
 * - `aws_autoscaling_group` resources in place where nothing differs but the version in
 *   their `launch_template` block: platform/terraform's ASGs name the template's
 *   `latest_version` (modules/workers/main.tf, modules/masters/main.tf), which Terraform
 *   knows only after the template's update (`after_unknown`), so every such ASG shows as an
 *   update in the same plan; the id stays the same.
 *
 * Anything else (a create, a delete, a replace, another attribute of an ASG, another type)
 * is a change the operator has to review with `run`. Pure.
 * @param resources planView(plan).resources (src/policy/plan-json.ts)
 * @returns the resources that change and may be applied, and those that refuse the apply
 */
export function classifyUpgradePlan(resources: readonly PlannedResource[]): {
  changed: PlannedResource[];
  other: PlannedResource[];
} {
  const changed = resources.filter(isChange);
  const other = changed.filter(
    (r) =>
      !(
        r.actions.length === 1 &&
        r.actions[0] === 'update' &&
        (r.type === 'aws_launch_template' || (r.type === 'aws_autoscaling_group' && onlyTemplateVersion(r)))
      ),
  );
  return { changed, other };
}

/** true when an ASG update changes nothing but `launch_template[].version` (same template id). */
function onlyTemplateVersion(r: PlannedResource): boolean {
  if (!r.before || !r.after) return false;
  const { launch_template: lb, ...before } = r.before;
  const { launch_template: la, ...after } = r.after;
  const { launch_template: _, ...unknown } = r.afterUnknown;
  if (!isDeepStrictEqual(blankAsNull(before), blankAsNull(after))) return false;
  if (!isEmpty(unknown)) return false;
  const strip = (v: unknown) =>
    Array.isArray(v) ? v.map((t) => ({ ...(t as Record<string, unknown>), version: undefined })) : v;
  return Array.isArray(lb) && lb.length > 0 && isDeepStrictEqual(strip(lb), strip(la));
}

/**
 * The value with every empty string as null: the AWS provider plans an unset string of a
 * nested block as `""` over a state of `null` (seen on `capacity_reservation_specification`
 * of every ASG, provider 5.100.0): no change to the resource.
 */
function blankAsNull(v: unknown): unknown {
  if (v === '') return null;
  if (Array.isArray(v)) return v.map(blankAsNull);
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, blankAsNull(x)]));
  return v;
}

/** true when an `after_unknown` value marks nothing unknown (`false`, or blocks `[]`/`{}`/`[{}]` of such). */
function isEmpty(v: unknown): boolean {
  if (v === false) return true;
  if (Array.isArray(v)) return v.every(isEmpty);
  if (v && typeof v === 'object') return Object.values(v).every(isEmpty);
  return false;
}
