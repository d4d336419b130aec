import { describe, expect, it } from 'vitest';
import { classifyAddress, parseAllowlist, parseCidr, refusalBeforeLookup, refusalOf } from '../../src/domain/address-policy.js';
import { nextRetryDelay, parseRetrySchedule, wantsEvent } from '../../src/domain/webhooks.js';

describe('classifyAddress', () => {
  const cases: Array<[string, string]> = [
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['2606:4700::1111', 'public'],
    ['not-an-ip', 'reserved'],
  ];
  it.each(cases)('%s is %s', (ip, kind) => expect(classifyAddress(ip)).toBe(kind));

  // IPv6 forms that carry an IPv4 address are judged by that address (or refused outright).
  const embedded: Array<[string, string, string]> = [
    ['IPv4-compatible, dotted', '::127.0.0.1', 'loopback'],
    ['IPv4-compatible, hex', '::7f00:1', 'loopback'],
    ['IPv4-compatible, private', '::10.0.0.1', 'private'],
    ['IPv4-compatible, metadata', '::169.254.169.254', 'metadata'],
    ['IPv4-compatible, public', '::8.8.8.8', 'public'],
    ['IPv4-mapped, hex', '::ffff:7f00:1', 'loopback'],
    ['IPv4-mapped, spelled out', '0:0:0:0:0:ffff:a9fe:a9fe', 'metadata'],
    ['IPv4-translated', '::ffff:0:7f00:1', 'loopback'],
    ['IPv4-translated, dotted', '::ffff:0:10.1.2.3', 'private'],
    ['IPv4-translated, public', '::ffff:0:8.8.8.8', 'public'],
    ['NAT64 well-known prefix', '64:ff9b::7f00:1', 'loopback'],
    ['NAT64, dotted', '64:ff9b::192.168.0.1', 'private'],
    ['NAT64, metadata', '64:ff9b::169.254.169.254', 'metadata'],
    ['NAT64, public', '64:ff9b::808:808', 'public'],
    ['NAT64 local-use prefix', '64:ff9b:1::7f00:1', 'reserved'],
    ['NAT64 local-use prefix, public-looking', '64:ff9b:1:808:808::', 'reserved'],
    ['6to4 of loopback', '2002:7f00:1::1', 'loopback'],
    ['6to4 of private', '2002:c0a8:101::', 'private'],
    ['6to4 of metadata', '2002:a9fe:a9fe::1', 'metadata'],
    ['6to4 of public', '2002:808:808::1', 'public'],
    ['Teredo', '2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved'],
    ['Teredo hiding loopback', '2001::80ff:fffe', 'reserved'],
    ['documentation prefix', '2001:db8::1', 'reserved'],
    ['discard prefix', '100::1', 'reserved'],
    ['site-local (deprecated)', 'fec0::1', 'private'],
    ['not Teredo: 2001:4860 is public', '2001:4860:4860::8888', 'public'],
  ];
  it.each(embedded)('%s: %s is %s', (_name, ip, kind) => expect(classifyAddress(ip)).toBe(kind));
});

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', true],
    ['127.0.0.1', true],
    ['fc00::/7', true],
    ['10.0.0.0/33', false],
    ['10.0.0/8', false],
    ['::/129', false],
    ['1.2.3.4/8/9', false],
  ])('%s parses: %s', (text, ok) => expect(parseCidr(text) !== null).toBe(ok));
});

describe('refusalOf', () => {
  const allow = parseAllowlist('127.0.0.1, 10.20.0.0/16, hooks.internal');
  it.each<[string, string[], boolean]>([
    ['example.com', ['93.184.216.34'], true],
    ['127.0.0.1', ['127.0.0.1'], true],
    ['127.0.0.2', ['127.0.0.2'], false],
    ['a.internal', ['10.20.3.4'], true],
    ['b.internal', ['10.21.3.4'], false],
    ['hooks.internal', ['192.168.0.9'], true],
    ['mixed.example', ['93.184.216.34', '10.0.0.1'], false],
    ['nothing.example', [], false],
    ['metadata.example', ['169.254.169.254'], false],
  ])('%s → %j allowed: %s', (host, addrs, ok) => expect(refusalOf(host, addrs, allow) === null).toBe(ok));

  it('an IPv6 form of an allowlisted IPv4 address is not allowlisted by it (only ::ffff: is that address)', () => {
    expect(refusalOf('::127.0.0.1', ['::127.0.0.1'], allow)).toMatch(/loopback address/);
    expect(refusalOf('64:ff9b::7f00:1', ['64:ff9b::7f00:1'], allow)).toMatch(/loopback address/);
    expect(refusalOf('::ffff:127.0.0.1', ['::ffff:127.0.0.1'], allow)).toBeNull();
  });

  it('with public addresses off, only allowlisted hosts and CIDRs pass', () => {
    const only = parseAllowlist('127.0.0.1, hooks.internal', true);
    expect(refusalOf('example.com', ['93.184.216.34'], only)).toMatch(/does not name; this server calls only the addresses listed there/);
    expect(refusalOf('8.8.8.8', ['8.8.8.8'], only)).toMatch(/FANOUT_WEBHOOK_ALLOW_PUBLIC=false/);
    expect(refusalOf('127.0.0.1', ['127.0.0.1'], only)).toBeNull();
    expect(refusalOf('hooks.internal', ['93.184.216.34'], only)).toBeNull();
    expect(refusalOf('10.0.0.1', ['10.0.0.1'], only)).toMatch(/a private address/);
  });

  it('with public addresses off, a name not in the allowlist is refused before any lookup', () => {
    const only = parseAllowlist('127.0.0.1, Hooks.Internal', true);
    expect(refusalBeforeLookup('example.com', only)).toMatch(/example\.com is not named by --webhook-allow/);
    expect(refusalBeforeLookup('hooks.internal', only)).toBeNull();
    expect(refusalBeforeLookup('8.8.8.8', only)).toBeNull(); // an address: refusalOf judges it, no lookup needed
    expect(refusalBeforeLookup('[::1]', only)).toBeNull();
    expect(refusalBeforeLookup('example.com', parseAllowlist('127.0.0.1'))).toBeNull();
  });

  it('says which address and why', () => {
    expect(refusalOf('x.example', ['169.254.169.254'], parseAllowlist(''))).toMatch(/169\.254\.169\.254, a metadata address/);
  });

  it('rejects a malformed allowlist entry', () => {
    expect(() => parseAllowlist('10.0.0.0/40')).toThrow(/neither a host name/);
  });
});

describe('retry schedule and filters', () => {
  it('parses durations and spreads them ±20%', () => {
    expect(parseRetrySchedule('500ms,5s,5m,2h,1d')).toEqual([500, 5000, 300_000, 7_200_000, 86_400_000]);
    expect(() => parseRetrySchedule('5s,soon')).toThrow(/"soon"/);
    expect(nextRetryDelay([1000, 2000], 1, 0)).toBe(800);
    expect(nextRetryDelay([1000, 2000], 2, 0.999)).toBe(2399);
    expect(nextRetryDelay([1000, 2000], 3, 0.5)).toBeNull();
  });

  it('matches event filters', () => {
    expect(wantsEvent(undefined, 'batch.failed')).toBe(true);
    expect(wantsEvent(undefined, 'item.failed')).toBe(false);
    expect(wantsEvent(['batch.finished'], 'batch.cancelled')).toBe(true);
    expect(wantsEvent(['item.failed'], 'batch.succeeded')).toBe(false);
  });
});
