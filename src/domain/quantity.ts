/**
 * Kubernetes resource quantities ("100m", "1Gi", "0.5", "2e3"), checked before a spec is stored
 * so the API server never rejects a Job we built. The grammar is the one `resource.Quantity`
 * documents:
 *
 *   quantity ::= signedNumber suffix
 *   suffix   ::= binarySI (Ki Mi Gi Ti Pi Ei) | decimalSI (n u m "" k M G T P E) | ("e"|"E") signedNumber
 *
 * Resource amounts are never negative, so a sign other than "+" is refused here.
 */

const QUANTITY = /^\+?(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** Longer strings are not quantities anyone means; the bound keeps error messages short too. */
const MAX_LENGTH = 64;

/**
 * The value of a quantity in base units (cores, bytes, ...) as a float, or null when `s` is not
 * a non-negative Kubernetes quantity. Precise enough to compare requests with limits.
 */
export function parseQuantity(s: string): number | null {
  if (s.length === 0 || s.length > MAX_LENGTH) return null;
  const m = QUANTITY.exec(s);
  if (m === null) return null;
  const number = Number(m[1]);
  const suffix = m[2] ?? '';
  let factor: number;
  if (suffix in BINARY) factor = BINARY[suffix];
  else if (suffix in DECIMAL) factor = DECIMAL[suffix];
  else factor = 10 ** Number(suffix.slice(1));
  const value = number * factor;
  return Number.isFinite(value) ? value : null;
}

/** Why `s` is not a quantity, naming the value, or undefined when it is one. */
export function quantityProblem(s: string): string | undefined {
  if (parseQuantity(s) !== null) return undefined;
  const shown = JSON.stringify(s.length > MAX_LENGTH ? s.slice(0, MAX_LENGTH) + '…' : s);
  return `invalid quantity ${shown}: a non-negative number with an optional suffix, like "100m", "0.5", "2e3", "512Mi" or "1Gi" (binary Ki Mi Gi Ti Pi Ei, decimal m k M G T P E)`;
}
