import type { Waiver } from './types.js';

/**
 * Waivers in the environment file: `POLICY_WAIVERS`, entries separated by `;`, each
 * `<rule id> until <YYYY-MM-DD>: <reason>`, e.g.
 *
 *   POLICY_WAIVERS="cis-k8s-1.2.2 until 2027-03-31: worker bootstrap token, OPS-42"
 *
 * The date is the last day (UTC) the waiver holds. A waiver past its date is itself a
 * violation (the rule is reported as failed, with the expired waiver named).
 */

export const WAIVER_RE = /^([a-z0-9][a-z0-9.-]*) until (\d{4}-\d{2}-\d{2}): (\S.*)$/;

/**
 * Parses the POLICY_WAIVERS value.
 * @returns the waivers, or the messages of the entries that are malformed
 */
export function parseWaivers(value: string): { waivers: Waiver[]; errors: string[] } {
  const waivers: Waiver[] = [];
  const errors: string[] = [];
  for (const raw of value.split(';')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const m = WAIVER_RE.exec(entry);
    if (!m) {
      errors.push(`"${entry}": must be "<rule id> until <YYYY-MM-DD>: <reason>"`);
      continue;
    }
    const expires = m[2]!;
    const d = new Date(`${expires}T00:00:00Z`);
    if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== expires) {
      errors.push(`"${entry}": ${expires} is not a date`);
      continue;
    }
    waivers.push({ ruleId: m[1]!, expires, reason: m[3]!.trim() });
  }
  return { waivers, errors };
}

/** true when the waiver still holds on `now` (its expiry day included, UTC). */
export function waiverActive(w: Waiver, now: Date): boolean {
  return now.toISOString().slice(0, 10) <= w.expires;
}
