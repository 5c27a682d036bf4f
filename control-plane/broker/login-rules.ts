import { RESERVED_ID_PREFIXES, RESERVED_IDS } from '../../shared/ids.ts';
import { CONTROL_PLANE_USERNAME, enrolleeDeviceId, isValidDeviceId } from '../../shared/topics.ts';

/**
 * Who may log in to a broker with which client id, shared by the embedded broker's `authenticate`
 * and the Mosquitto plugin adapter (the C plugin applies the same rules): a login may only use its
 * own client id, so no login can take over another's session.
 *
 * - the control plane: its username, client ids under the reserved `edgefleet-` prefix;
 * - an enrollee: `enroll-<tokenId>`, client id `enroll-<deviceId>` for the device it enrolls;
 * - a device: username = client id = device id, never a reserved name.
 */
export type LoginClass =
  | { kind: 'control-plane' }
  | { kind: 'enrollee'; tokenId: string; deviceId: string }
  | { kind: 'device'; deviceId: string }
  | { kind: 'refused'; reason: 'client-id' | 'reserved' | 'malformed' };

/** Reserved by the one id rule (shared/ids.ts): the control plane's login, enrollees' logins and client ids, admin names. */
export function isReservedLogin(id: string): boolean {
  return id === CONTROL_PLANE_USERNAME || RESERVED_ID_PREFIXES.some((p) => id.startsWith(p)) || RESERVED_IDS.includes(id);
}

/** Whether an id may be a device's broker login: the shared id rule (which refuses every reserved name). */
export function deviceLoginAllowed(id: string): boolean {
  return isValidDeviceId(id) && !isReservedLogin(id);
}

export function classifyLogin(username: string, clientId: string, controlPlaneUsername = CONTROL_PLANE_USERNAME): LoginClass {
  if (username === controlPlaneUsername) return clientId.startsWith('edgefleet-') ? { kind: 'control-plane' } : { kind: 'refused', reason: 'client-id' };
  if (username.startsWith('enroll-')) {
    const tokenId = username.slice('enroll-'.length);
    if (!/^[a-z0-9]{6,32}$/.test(tokenId)) return { kind: 'refused', reason: 'malformed' };
    const deviceId = enrolleeDeviceId(clientId);
    if (deviceId === null) return { kind: 'refused', reason: 'client-id' };
    if (!deviceLoginAllowed(deviceId)) return { kind: 'refused', reason: 'reserved' };
    return { kind: 'enrollee', tokenId, deviceId };
  }
  if (!isValidDeviceId(username)) return { kind: 'refused', reason: 'malformed' };
  if (isReservedLogin(username)) return { kind: 'refused', reason: 'reserved' };
  if (clientId !== username) return { kind: 'refused', reason: 'client-id' };
  return { kind: 'device', deviceId: username };
}
