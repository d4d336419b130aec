import { describe, expect, it } from 'vitest';
import { CreateLimiter } from '../../src/runtimes/kubernetes/create-limiter.js';

describe('CreateLimiter (pacing Job creation against the API server)', () => {
  it('lets a burst of qps through at once, then one every 1/qps seconds', () => {
    const l = new CreateLimiter(4, 0);
    expect([l.take(0), l.take(0), l.take(0), l.take(0)]).toEqual([0, 0, 0, 0]);
    expect(l.take(0)).toBe(250);
    expect(l.take(249)).toBe(1);
    expect(l.take(250)).toBe(0);
    expect(l.take(250)).toBe(250);
  });

  it("after a 429 waits the server's Retry-After, even with tokens left", () => {
    const l = new CreateLimiter(100, 0);
    expect(l.throttle('3', 1000)).toBe(3000);
    expect(l.take(1000)).toBe(3000);
    expect(l.take(3999)).toBe(1);
    // tokens refill from the pause on, not from before it
    expect(l.take(4000)).toBe(10);
    expect(l.take(4010)).toBe(0);
  });

  it('without Retry-After backs off 1 s, 2 s, 4 s … up to 60 s, and starts over after a success', () => {
    const l = new CreateLimiter(10, 0);
    expect([l.throttle(undefined, 0), l.throttle(undefined, 0), l.throttle('soon', 0)]).toEqual([1000, 2000, 4000]);
    for (let i = 0; i < 10; i++) l.throttle(undefined, 0);
    expect(l.throttle(undefined, 0)).toBe(60_000);
    l.succeeded();
    expect(l.throttle(undefined, 0)).toBe(1000);
  });

  it('never shortens a pause already in force', () => {
    const l = new CreateLimiter(10, 0);
    l.throttle('10', 0);
    l.throttle('1', 0);
    expect(l.take(5000)).toBe(5000);
  });
});
