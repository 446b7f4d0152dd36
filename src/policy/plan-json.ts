import { z } from 'zod';
import { UserError } from '../errors.js';

/**
 * A typed view of `terraform show -json <planfile>` for the policy rules: one entry per
 * resource of `resource_changes` (Terraform lists every managed resource there, no-ops
 * included), with its actions and its values before and after the plan.
 * Format: https://developer.hashicorp.com/terraform/internals/json-format#change-representation
 */

/** One managed resource of the plan. */
export interface PlannedResource {
  /** full address, e.g. `module.network.aws_security_group.this["bastion"]` */
  address: string;
  /** resource type, e.g. `aws_launch_template` */
  type: string;
  /** ["no-op"], ["create"], ["update"], ["delete"], ["delete","create"], ["create","delete"], ["read"], ["forget"] */
  actions: string[];
  /** attribute values after the apply (null when the resource is destroyed); unknown values are absent */
  after: Record<string, unknown> | null;
  /** attribute values before (null when the resource is created) */
  before: Record<string, unknown> | null;
  /** attributes (at any depth) whose value is known only after apply, as Terraform marks them */
  afterUnknown: Record<string, unknown>;
}

/** The plan as the rules read it. */
export interface PlanView {
  resources: PlannedResource[];
}

const planJson = z.object({
  format_version: z.string(),
  resource_changes: z
    .array(
      z.object({
        address: z.string(),
        mode: z.string().optional(),
        type: z.string(),
        change: z.object({
          actions: z.array(z.string()),
          before: z.record(z.string(), z.unknown()).nullable().optional(),
          after: z.record(z.string(), z.unknown()).nullable().optional(),
          after_unknown: z.unknown().optional(),
        }),
      }),
    )
    .optional(),
});

/**
 * Reads a plan representation.
 * @param json the parsed output of `terraform show -json <planfile>`
 * @param source where it came from, for the error message
 * @throws UserError when it is not a plan representation (no format_version / malformed resource_changes)
 */
export function planView(json: unknown, source = 'the plan'): PlanView {
  const parsed = planJson.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(
      `${source} is not a Terraform plan in JSON (terraform show -json): ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
    );
  }
  return {
    resources: (parsed.data.resource_changes ?? [])
      .filter((r) => (r.mode ?? 'managed') === 'managed')
      .map((r) => ({
        address: r.address,
        type: r.type,
        actions: r.change.actions,
        after: r.change.after ?? null,
        before: r.change.before ?? null,
        afterUnknown:
          r.change.after_unknown && typeof r.change.after_unknown === 'object'
            ? (r.change.after_unknown as Record<string, unknown>)
            : {},
      })),
  };
}

/** true when applying the plan changes the resource (anything but `no-op` and data-source `read`). */
export function isChange(r: Pick<PlannedResource, 'actions'>): boolean {
  return !r.actions.every((a) => a === 'no-op' || a === 'read');
}

/** true when the plan destroys the resource (delete, or either order of replace). */
export function isDestroyed(r: PlannedResource): boolean {
  return r.actions.includes('delete');
}

/** Resources of a type that exist after the apply (created, updated, replaced or unchanged), with their values. */
export function liveOfType(
  plan: PlanView,
  type: string,
): (PlannedResource & { after: Record<string, unknown> })[] {
  return plan.resources.filter(
    (r): r is PlannedResource & { after: Record<string, unknown> } =>
      r.type === type && r.after !== null && !(r.actions.length === 1 && r.actions[0] === 'delete'),
  );
}

/** The first element of a nested block list (Terraform's JSON gives blocks as arrays), or undefined. */
export function block(v: unknown): Record<string, unknown> | undefined {
  if (Array.isArray(v)) return v[0] as Record<string, unknown> | undefined;
  if (v && typeof v === 'object') return v as Record<string, unknown>;
  return undefined;
}

/** Every element of a nested block list. */
export function blocks(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? (v as Record<string, unknown>[]) : [];
}
