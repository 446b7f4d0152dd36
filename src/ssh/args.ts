import { InvalidArgumentError } from 'commander';
import ipaddr from 'ipaddr.js';

/**
 * Validation of agent-setup's flag values, as commander argument parsers (a bad value is a
 * usage error, exit code 2, naming the flag). Kept free of heavy imports: the CLI loads this
 * module to build its help.
 */

const LABEL = '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(\\.${LABEL})*$`);

/**
 * Whether `value` is an address or host name that is safe to write into an ssh config, a
 * known_hosts file or a remote command line: an IPv4 dotted quad, an IPv6 address, or an
 * RFC 1123 host name (letters, digits, '-' and '.'; no spaces, quotes or shell characters).
 */
export function isHostAddress(value: string): boolean {
  if (ipaddr.IPv4.isValidFourPartDecimal(value)) return true;
  if (value.includes(':')) return ipaddr.IPv6.isValid(value);
  return HOSTNAME_RE.test(value) && !/^[\d.]+$/.test(value);
}

/** `--bastion`/`--node`: an IP address or host name. @throws InvalidArgumentError */
export function parseHost(value: string): string {
  if (!isHostAddress(value))
    throw new InvalidArgumentError('must be an IP address or a host name such as bastion.example.com');
  return value;
}

/** Collects a repeatable host flag (`--node A --node B` or `--node A B`). @throws InvalidArgumentError */
export function collectHost(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), parseHost(value)];
}

/** `--port`/`--bastion-port`: a TCP port, 1..65535. @throws InvalidArgumentError */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535)
    throw new InvalidArgumentError('must be a TCP port, 1 to 65535');
  return n;
}

/**
 * `--lifetime`: how long the agent keeps the key, in the time format ssh-add(1) -t takes
 * (sshd_config(5) TIME FORMATS: a number with an optional unit s, m, h, d or w, repeated:
 * `8h`, `90m`, `1h30m`, `3600`). Zero is refused: it would mean "forever".
 * @throws InvalidArgumentError
 */
export function parseLifetime(value: string): string {
  const parts = /^(\d+[sSmMhHdDwW]?)+$/.test(value) ? value.match(/\d+/g)! : undefined;
  if (!parts || parts.every((p) => Number(p) === 0)) {
    throw new InvalidArgumentError('must be a positive ssh time such as 8h, 90m or 1h30m');
  }
  return value;
}
