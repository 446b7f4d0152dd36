import type { Rule } from '../types.js';
import { awsRules } from './aws.js';
import { environmentRules } from './environment.js';
import { kubernetesRules } from './kubernetes.js';

/** Every policy rule, in the order reports list them. Ids are unique (checked by the unit tests). */
export const RULES: readonly Rule[] = [...awsRules, ...environmentRules, ...kubernetesRules];

/** The rule with this id, or undefined. */
export function ruleById(id: string): Rule | undefined {
  return RULES.find((r) => r.id === id);
}
