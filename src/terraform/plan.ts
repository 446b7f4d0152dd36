import { z } from 'zod';
import { PlatformError } from '../errors.js';

/**
 * Reading Terraform's machine-readable output: `terraform show -json <plan>` and
 * `terraform output -json`. Pure functions over the parsed JSON.
 * Formats: https://developer.hashicorp.com/terraform/internals/json-format
 */

/** What a plan would do. */
export interface PlanSummary {
  /**
   * true when applying the plan changes anything: resources or outputs (terraform plan
   * `-detailed-exitcode` exit code 2). The idempotency check of the tests is `changes === false`.
   */
  changes: boolean;
  /** resources to create (a replacement counts as one add and one destroy) */
  add: number;
  /** resources to update in place */
  change: number;
  /** resources to destroy */
  destroy: number;
  /** addresses of the resources with an action other than no-op/read, e.g. `module.bastion.aws_autoscaling_group.this` */
  addresses: string[];
  /** absolute path of the saved plan (the input of Terraform.apply (driver.ts)) */
  planFile: string;
  /** the plan as JSON (`show -json`), when it was read */
  json?: unknown;
}

const planJson = z.object({
  format_version: z.string(),
  resource_changes: z
    .array(
      z.object({
        address: z.string(),
        change: z.object({ actions: z.array(z.string()) }),
      }),
    )
    .optional(),
});

const outputJson = z.record(z.string(), z.object({ value: z.unknown(), sensitive: z.boolean().optional() }));

/**
 * Counts the actions of a plan. `actions` is one of ["no-op"], ["read"], ["create"],
 * ["update"], ["delete"], ["delete","create"] / ["create","delete"] (replace), ["forget"].
 *
 * @param json the parsed output of `terraform show -json <planfile>`
 * @returns counts and addresses (without `changes` and `planFile`, which the caller knows)
 * @throws PlatformError when the JSON is not a plan representation
 */
export function summarizePlan(json: unknown): Omit<PlanSummary, 'changes' | 'planFile'> {
  const parsed = planJson.safeParse(json);
  if (!parsed.success) {
    throw new PlatformError(
      `unexpected output of terraform show -json: ${parsed.error.issues[0]?.message ?? ''}`,
    );
  }
  const summary = { add: 0, change: 0, destroy: 0, addresses: [] as string[] };
  for (const rc of parsed.data.resource_changes ?? []) {
    const actions = rc.change.actions;
    if (actions.includes('create')) summary.add += 1;
    if (actions.includes('update')) summary.change += 1;
    if (actions.includes('delete') || actions.includes('forget')) summary.destroy += 1;
    if (actions.some((a) => a !== 'no-op' && a !== 'read')) summary.addresses.push(rc.address);
  }
  return summary;
}

/**
 * The values of `terraform output -json` ({ name: { value, type, sensitive } }).
 * @throws PlatformError when the JSON does not have that shape
 */
export function outputValues(json: unknown): Record<string, unknown> {
  const parsed = outputJson.safeParse(json);
  if (!parsed.success) {
    throw new PlatformError(
      `unexpected output of terraform output -json: ${parsed.error.issues[0]?.message ?? ''}`,
    );
  }
  return Object.fromEntries(Object.entries(parsed.data).map(([k, v]) => [k, v.value]));
}
