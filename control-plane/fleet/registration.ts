import type { DeviceFacts } from '../../shared/facts.ts';
import { matchProfile } from '../../shared/matcher.ts';
import type { DeviceProfile } from '../../shared/profile.ts';

export type ProfileDecision = { profileId: string | null; reason: 'override' | 'agent-hint' | 'matched' | 'fallback' | 'no-match' };

/**
 * Which profile a device runs: the operator's override wins, then a profile the agent was started
 * with (`--profile`, how simulated devices claim one), then matching on the probed facts.
 */
export function decideProfile(facts: DeviceFacts, profiles: readonly DeviceProfile[], override: string | null, hint: string | null): ProfileDecision {
  const known = (id: string | null): id is string => id !== null && profiles.some((p) => p.id === id);
  if (known(override)) return { profileId: override, reason: 'override' };
  if (known(hint)) return { profileId: hint, reason: 'agent-hint' };
  const m = matchProfile(facts, profiles);
  return m ? { profileId: m.profileId, reason: m.reason === 'override' ? 'matched' : m.reason } : { profileId: null, reason: 'no-match' };
}
