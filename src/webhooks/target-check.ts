import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { refusalBeforeLookup, refusalOf, type Allowlist } from '../domain/address-policy.js';

/**
 * The I/O half of the SSRF rule: resolve a target's host and ask the pure policy. Used when an
 * endpoint or a batch webhook is created, and again for every delivery (DNS can change), where
 * the connection is made to the very address that was checked (no second lookup to rebind).
 */

export class RefusedTargetError extends Error {}

async function resolveAll(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  try {
    return (await dns.promises.lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch {
    return [];
  }
}

/** Why `url` may not be called, or null. */
export async function targetRefusal(url: string, allow: Allowlist): Promise<string | null> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return refusalBeforeLookup(host, allow) ?? refusalOf(host, await resolveAll(host), allow);
}

/** A `lookup` for http.request that refuses what the policy refuses and connects to what it checked. */
export function checkedLookup(allow: Allowlist): LookupFunction {
  return (hostname, options, callback) => {
    const early = refusalBeforeLookup(hostname, allow);
    if (early) return (callback as (e: Error) => void)(new RefusedTargetError(early));
    dns.lookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) return (callback as (e: Error) => void)(err);
      const refusal = refusalOf(hostname, addresses.map((a) => a.address), allow);
      if (refusal) return (callback as (e: Error) => void)(new RefusedTargetError(refusal));
      if ((options as { all?: boolean }).all) (callback as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
      else (callback as (e: null, a: string, f: number) => void)(null, addresses[0].address, addresses[0].family);
    });
  };
}
