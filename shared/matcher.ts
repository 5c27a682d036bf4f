import type { DeviceFacts } from './facts.ts';
import type { DeviceProfile, MatchRules } from './profile.ts';

const hasFlag = (facts: DeviceFacts, flag: string): boolean => facts.cpu.flags.includes(flag.toLowerCase());

function isJetson(facts: DeviceFacts): boolean {
  return facts.tegraRelease !== null || /jetson|nvidia/i.test(facts.deviceTreeModel ?? '');
}

/** Which rules of a profile fail for these facts; empty means it matches. */
export function failedRules(rules: MatchRules, facts: DeviceFacts): string[] {
  const failed: string[] = [];
  if (rules.platform && !rules.platform.includes(facts.platform)) failed.push('platform');
  if (rules.arch && !rules.arch.includes(facts.arch)) failed.push('arch');
  if (rules.cpuFlagsAll && !rules.cpuFlagsAll.every((f) => hasFlag(facts, f))) failed.push('cpuFlagsAll');
  if (rules.cpuFlagsAny && !rules.cpuFlagsAny.some((f) => hasFlag(facts, f))) failed.push('cpuFlagsAny');
  if (rules.jetson !== undefined && rules.jetson !== isJetson(facts)) failed.push('jetson');
  if (rules.deviceTreeModelPattern && !new RegExp(rules.deviceTreeModelPattern, 'i').test(facts.deviceTreeModel ?? '')) {
    failed.push('deviceTreeModelPattern');
  }
  return failed;
}

export type ProfileMatch = { profileId: string; reason: 'override' | 'matched' | 'fallback' };

/**
 * Picks the profile for a device: an operator override wins when it names a known profile; otherwise
 * the matching profile with the highest priority (ties broken by id, so the choice is stable).
 */
export function matchProfile(facts: DeviceFacts, profiles: readonly DeviceProfile[], override?: string | null): ProfileMatch | null {
  if (override && profiles.some((p) => p.id === override)) return { profileId: override, reason: 'override' };
  const candidates = profiles
    .filter((p) => failedRules(p.match, facts).length === 0)
    .sort((a, b) => b.priority - a.priority || a.id.localeCompare(b.id));
  const best = candidates[0];
  if (!best) return null;
  return { profileId: best.id, reason: Object.keys(best.match).length === 0 ? 'fallback' : 'matched' };
}
