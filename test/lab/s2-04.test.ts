import { describe, expect, it } from 'vitest';
import { claim as s2_04, type IgnoredBindOutcome } from '../../src/lab/claims/s2-04.js';

const t = (portAfterListen: number | null, listen = 'ok', bind = 'EADDRINUSE'): IgnoredBindOutcome => ({
  bind,
  portAfterBind: 0,
  listen,
  portAfterListen,
});
const m = (tries: IgnoredBindOutcome[]) => ({
  wantedPort: 5241,
  ephemeralRange: '32768-60999',
  tries,
});

describe('S2-04 judge', () => {
  it('confirms random ephemeral ports after a failed bind and listen()', () => {
    const j = s2_04.judge(m([t(50_071), t(35_165)]));
    expect(j.verdict).toBe('confirmed');
    expect(j.explanation).toContain('listen() autobinds');
  });
  it('refutes when listen fails or lands on the wanted or a fixed port', () => {
    expect(s2_04.judge(m([t(null, 'EINVAL'), t(null, 'EINVAL')])).verdict).toBe('refuted');
    expect(s2_04.judge(m([t(40_000), t(40_000)])).verdict).toBe('refuted');
    expect(s2_04.judge(m([t(1000), t(1001)])).verdict).toBe('refuted');
  });
  it('is not-tested when the bind did not fail', () => {
    expect(s2_04.judge(m([t(5241, 'ok', 'ok')])).verdict).toBe('not-tested');
  });
});
