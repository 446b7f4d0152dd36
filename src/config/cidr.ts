import ipaddr from 'ipaddr.js';

/**
 * IPv4 CIDR helpers over ipaddr.js, for validating environment files.
 * All functions take canonical `a.b.c.d/n` strings (see {@link parseCidr}).
 */

export interface Cidr {
  /** the network address as a 32-bit unsigned integer */
  base: number;
  /** prefix length, 0..32 */
  bits: number;
}

function toInt(addr: ipaddr.IPv4): number {
  return addr.toByteArray().reduce((acc, b) => acc * 256 + b, 0);
}

/**
 * Parses an IPv4 CIDR. Returns undefined when the text is not one, or when host bits are
 * set (10.0.0.1/16 is a typo for 10.0.0.0/16 more often than not, so it is rejected).
 */
export function parseCidr(text: string): Cidr | undefined {
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(text)) return undefined;
  try {
    const [addr, bits] = ipaddr.IPv4.parseCIDR(text);
    const base = toInt(addr);
    const size = 2 ** (32 - bits);
    if (base % size !== 0) return undefined;
    return { base, bits };
  } catch {
    return undefined;
  }
}

function range(c: Cidr): [number, number] {
  return [c.base, c.base + 2 ** (32 - c.bits) - 1];
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  const [a0, a1] = range(outer);
  const [b0, b1] = range(inner);
  return b0 >= a0 && b1 <= a1;
}

/** True when the two ranges share at least one address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  const [a0, a1] = range(a);
  const [b0, b1] = range(b);
  return a0 <= b1 && b0 <= a1;
}

/** The n-th address of a CIDR as dotted quad (n=1: the Kubernetes service IP of a service CIDR). */
export function nthAddress(cidr: string, n: number): string {
  const c = parseCidr(cidr);
  if (!c) throw new Error(`not a CIDR: ${cidr}`);
  const v = c.base + n;
  return [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
}
