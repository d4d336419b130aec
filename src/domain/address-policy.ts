import { isIP } from 'node:net';

/**
 * Which network addresses a webhook may be sent to (no server-side request forgery). Pure: IP
 * parsing, CIDR matching and the classification of special-purpose ranges; resolving names is
 * the caller's job. An address is refused when it is loopback, private (RFC 1918, CGNAT,
 * fc00::/7), link-local (169.254/16 with the cloud metadata address, fe80::/10), unspecified,
 * multicast or reserved, unless an allowlist entry (a host name or a CIDR) names it. IPv6
 * addresses that embed an IPv4 address (IPv4-compatible, -mapped, -translated, NAT64, 6to4) are
 * judged by that IPv4 address; Teredo and local-use NAT64 are refused outright.
 */

export interface Cidr {
  version: 4 | 6;
  /** the network address as a 32- or 128-bit number */
  base: bigint;
  bits: number;
}

export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'unspecified' | 'metadata' | 'multicast' | 'reserved';

/** Parses an IPv4 or IPv6 address (no brackets, no zone) to its number; null when it is not one. */
export function parseIp(text: string): { version: 4 | 6; value: bigint } | null {
  const version = isIP(text);
  if (version === 4) return { version: 4, value: parseV4(text) };
  if (version === 6) return { version: 6, value: parseV6(text) };
  return null;
}

function parseV4(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseV6(text: string): bigint {
  let s = text.toLowerCase();
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    // An embedded IPv4 tail (`::ffff:1.2.3.4`) is the last two 16-bit groups.
    const v4 = parseV4(last);
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const groups = (x: string) => (x === '' ? [] : x.split(':').map((g) => parseInt(g, 16)));
  const front = groups(head);
  const back = rest === undefined ? [] : groups(rest);
  const zeros = rest === undefined ? 0 : 8 - front.length - back.length;
  return [...front, ...Array<number>(zeros).fill(0), ...back].reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** Parses `a.b.c.d/n`, `x::/n` or a bare address (a /32 or /128); null when malformed. */
export function parseCidr(text: string): Cidr | null {
  const [addr, bitsText, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const ip = parseIp(addr);
  if (!ip) return null;
  const width = ip.version === 4 ? 32 : 128;
  if (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText)) return null;
  const bits = bitsText === undefined ? width : Number(bitsText);
  if (bits > width) return null;
  return { version: ip.version, base: ip.value & mask(width, bits), bits };
}

function mask(width: number, bits: number): bigint {
  return bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(width - bits);
}

/** Whether `ip` lies in `cidr` (IPv4-mapped IPv6 addresses match IPv4 ranges). */
export function cidrContains(cidr: Cidr, ip: { version: 4 | 6; value: bigint }): boolean {
  const v = unmap(ip);
  if (v.version !== cidr.version) return false;
  const width = v.version === 4 ? 32 : 128;
  return (v.value & mask(width, cidr.bits)) === cidr.base;
}

/** `::ffff:a.b.c.d` is the IPv4 address a.b.c.d. */
function unmap(ip: { version: 4 | 6; value: bigint }): { version: 4 | 6; value: bigint } {
  if (ip.version === 6 && ip.value >> 32n === 0xffffn) return { version: 4, value: ip.value & 0xffffffffn };
  return ip;
}

const RANGES: Array<[string, AddressClass]> = [
  ['169.254.169.254/32', 'metadata'],
  ['fd00:ec2::254/128', 'metadata'],
  ['100.100.100.200/32', 'metadata'],
  ['0.0.0.0/8', 'unspecified'],
  ['::/128', 'unspecified'],
  ['127.0.0.0/8', 'loopback'],
  ['::1/128', 'loopback'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['100.64.0.0/10', 'private'],
  ['fc00::/7', 'private'],
  ['fec0::/10', 'private'],
  ['169.254.0.0/16', 'link-local'],
  ['fe80::/10', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['ff00::/8', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
  ['192.0.0.0/24', 'reserved'],
  ['198.18.0.0/15', 'reserved'],
  // Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the network's own prefix.
  ['64:ff9b:1::/48', 'reserved'],
  // Teredo: the client's IPv4 address is in there obfuscated, and a relay forwards to it.
  ['2001::/32', 'reserved'],
  ['2001:db8::/32', 'reserved'],
  ['100::/64', 'reserved'],
].map(([c, k]) => [c, k as AddressClass]);
const PARSED_RANGES = RANGES.map(([c, k]) => [parseCidr(c)!, k] as const);

/**
 * IPv6 forms that carry an IPv4 address which a host or a translator may end up calling: the
 * prefix and where in the 128 bits the IPv4 address sits. IPv4-mapped `::ffff:0:0/96` is already
 * that address everywhere (see unmap).
 */
const EMBEDDING_PREFIXES: Array<{ cidr: Cidr; shift: bigint }> = [
  { cidr: parseCidr('::/96')!, shift: 0n }, // IPv4-compatible (deprecated): ::a.b.c.d
  { cidr: parseCidr('::ffff:0:0:0/96')!, shift: 0n }, // IPv4-translated (SIIT): ::ffff:0:a.b.c.d
  { cidr: parseCidr('64:ff9b::/96')!, shift: 0n }, // NAT64 well-known prefix
  { cidr: parseCidr('2002::/16')!, shift: 80n }, // 6to4: 2002:AABB:CCDD::/48
];

/** The IPv4 address an IPv6 address embeds (see EMBEDDING_PREFIXES), or null. */
function embeddedIpv4(ip: { version: 4 | 6; value: bigint }): { version: 4; value: bigint } | null {
  if (ip.version !== 6 || ip.value <= 1n) return null; // `::` and `::1` are themselves
  const found = EMBEDDING_PREFIXES.find((e) => cidrContains(e.cidr, ip));
  return found ? { version: 4, value: (ip.value >> found.shift) & 0xffffffffn } : null;
}

function classifyIp(ip: { version: 4 | 6; value: bigint }): AddressClass {
  for (const [cidr, kind] of PARSED_RANGES) if (cidrContains(cidr, ip)) return kind;
  const v4 = embeddedIpv4(ip);
  return v4 ? classifyIp(v4) : 'public';
}

/** The special-purpose range an address is in, or `public`; IPv6 forms embedding IPv4 by that IPv4 address. */
export function classifyAddress(address: string): AddressClass {
  const ip = parseIp(address);
  return ip ? classifyIp(ip) : 'reserved';
}

/** The parsed `--webhook-allow` list: host names (lowercase) and CIDRs. */
export interface Allowlist {
  hosts: string[];
  cidrs: Cidr[];
  /** FANOUT_WEBHOOK_ALLOW_PUBLIC=false: public addresses too need an entry (a closed network, the fuzz test) */
  onlyListed?: boolean;
}

/** Parses comma-separated hosts or CIDRs; throws with the entry that is neither. */
export function parseAllowlist(text: string | undefined, onlyListed = false): Allowlist {
  const out: Allowlist = { hosts: [], cidrs: [], ...(onlyListed ? { onlyListed } : {}) };
  for (const raw of (text ?? '').split(',').map((e) => e.trim()).filter(Boolean)) {
    const cidr = parseCidr(raw.replace(/^\[|\]$/g, ''));
    if (cidr) out.cidrs.push(cidr);
    else if (/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/i.test(raw) && !raw.includes('/')) out.hosts.push(raw.toLowerCase());
    else throw new Error(`${JSON.stringify(raw)} is neither a host name nor an IP address or CIDR`);
  }
  return out;
}

/**
 * With public addresses off, a host name the allowlist does not name is refused before it is
 * resolved: no DNS query leaves the machine for a name that could never pass. Null otherwise.
 */
export function refusalBeforeLookup(host: string, allow: Allowlist): string | null {
  const name = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (!allow.onlyListed || parseIp(name) || allow.hosts.includes(name)) return null;
  return `${name} is not named by --webhook-allow (FANOUT_WEBHOOK_ALLOW); this server calls only the hosts and addresses listed there (FANOUT_WEBHOOK_ALLOW_PUBLIC=false)`;
}

/**
 * Why a target is refused, or null when it may be called: `host` as written in the URL and the
 * addresses it resolved to (all of them must pass; a name listed in the allowlist passes whatever
 * it resolves to).
 */
export function refusalOf(host: string, addresses: string[], allow: Allowlist): string | null {
  const name = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (allow.hosts.includes(name)) return null;
  if (addresses.length === 0) return `${name} does not resolve to any address`;
  for (const address of addresses) {
    const ip = parseIp(address);
    if (ip && allow.cidrs.some((c) => cidrContains(c, ip))) continue;
    const kind = classifyAddress(address);
    if (kind !== 'public') {
      return `${name} resolves to ${address}, a ${kind} address; webhooks may only call public addresses unless --webhook-allow (FANOUT_WEBHOOK_ALLOW) names it`;
    }
    if (allow.onlyListed) {
      return `${name} resolves to ${address}, which --webhook-allow (FANOUT_WEBHOOK_ALLOW) does not name; this server calls only the addresses listed there (FANOUT_WEBHOOK_ALLOW_PUBLIC=false)`;
    }
  }
  return null;
}
