import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, setLongTimeout } from '../../src/domain/long-timeout.js';

describe('setLongTimeout', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it.each([
    ['a short delay', 1000],
    ['the longest setTimeout holds', MAX_TIMER_MS],
    ['one second more (setTimeout would fire at once)', MAX_TIMER_MS + 1000],
    ['a year', 31_536_000_000],
  ])('%s fires once, at the delay and not before', (_name, delay) => {
    const fire = vi.fn();
    setLongTimeout(fire, delay);
    vi.advanceTimersByTime(delay - 1);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fire).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(MAX_TIMER_MS * 3);
    expect(fire).toHaveBeenCalledTimes(1);
  });

  it('cancel stops it, also after the first step', () => {
    const fire = vi.fn();
    const t = setLongTimeout(fire, MAX_TIMER_MS * 2);
    vi.advanceTimersByTime(MAX_TIMER_MS + 5);
    t.cancel();
    vi.advanceTimersByTime(MAX_TIMER_MS * 3);
    expect(fire).not.toHaveBeenCalled();
  });

  it('a zero or negative delay fires on the next tick; Infinity never', () => {
    const soon = vi.fn();
    const never = vi.fn();
    setLongTimeout(soon, -5);
    setLongTimeout(never, Infinity);
    expect(soon).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(soon).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(MAX_TIMER_MS * 10);
    expect(never).not.toHaveBeenCalled();
  });
});
