/** The registry: every configured target has an adapter, and each adapter's defaults are configurable values. */
import { describe, expect, it } from 'vitest';
import { CHALLENGE_MODES, RELOAD_TARGETS } from '../../../agent/config/schema.js';
import { listenProblem } from '../../../agent/config/values.js';
import { reloadTargets } from '../../../agent/reload/index.js';

describe('reload targets', () => {
  it('has one adapter per reload.target, each bringing a configurable challenge mode and verify address', () => {
    expect(Object.keys(reloadTargets).sort()).toEqual([...RELOAD_TARGETS].sort());
    for (const target of Object.values(reloadTargets)) {
      expect(CHALLENGE_MODES).toContain(target.defaults.challengeMode);
      if (target.defaults.verify) expect(listenProblem(target.defaults.verify)).toBeUndefined();
    }
  });
});
