import { isValidId } from './ids.ts';

/** MQTT topic builders. Everything lives under one versioned root so a broker can host other tenants. */
export const TOPIC_ROOT = 'edgefleet/v1';

export type DeviceChannel = 'birth' | 'status' | 'heartbeat' | 'cmd' | 'report' | 'xfer/req' | 'xfer/data';

export const DEVICE_CHANNELS: readonly DeviceChannel[] = ['birth', 'status', 'heartbeat', 'cmd', 'report', 'xfer/req', 'xfer/data'];

/** The one id rule (shared/ids.ts): a reserved broker login or a non-conforming id is never a device topic or client. */
export function isValidDeviceId(id: string): boolean {
  return isValidId('device', id);
}

export const deviceTopic = (deviceId: string, channel: DeviceChannel): string => `${TOPIC_ROOT}/devices/${deviceId}/${channel}`;
export const deviceTopicPrefix = (deviceId: string): string => `${TOPIC_ROOT}/devices/${deviceId}/`;
export const enrollRequestTopic = (deviceId: string): string => `${TOPIC_ROOT}/enroll/${deviceId}/req`;
export const enrollResponseTopic = (deviceId: string): string => `${TOPIC_ROOT}/enroll/${deviceId}/res`;
/** Shared per-transfer data topic: published once per chunk per wave, read-only for devices granted that transfer. */
export const transferDataTopic = (transferId: string): string => `${TOPIC_ROOT}/transfers/${transferId}/data`;
const TRANSFER_DATA = new RegExp(`^${TOPIC_ROOT}/transfers/([^/]+)/data$`);
/** The transfer id of a shared data topic (an exact topic, no wildcards), or null. */
export function parseTransferDataTopic(topic: string): string | null {
  const id = TRANSFER_DATA.exec(topic)?.[1];
  return id !== undefined && isValidId('transfer', id) ? id : null;
}

/** What the control plane subscribes to. */
export const CONTROL_PLANE_SUBSCRIPTIONS = [
  `${TOPIC_ROOT}/devices/+/birth`,
  `${TOPIC_ROOT}/devices/+/status`,
  `${TOPIC_ROOT}/devices/+/heartbeat`,
  `${TOPIC_ROOT}/devices/+/report`,
  `${TOPIC_ROOT}/devices/+/xfer/req`,
  `${TOPIC_ROOT}/enroll/+/req`,
] as const;

export type ParsedTopic =
  | { kind: 'device'; deviceId: string; channel: DeviceChannel }
  | { kind: 'enroll'; deviceId: string; direction: 'req' | 'res' };

/** Parses a topic the control plane receives; null for anything outside the contract. */
export function parseTopic(topic: string): ParsedTopic | null {
  if (!topic.startsWith(`${TOPIC_ROOT}/`)) return null;
  const parts = topic.slice(TOPIC_ROOT.length + 1).split('/');
  const [area, id, ...rest] = parts;
  if (id === undefined || !isValidDeviceId(id)) return null;
  if (area === 'devices') {
    const channel = rest.join('/') as DeviceChannel;
    return DEVICE_CHANNELS.includes(channel) ? { kind: 'device', deviceId: id, channel } : null;
  }
  if (area === 'enroll' && rest.length === 1 && (rest[0] === 'req' || rest[0] === 'res')) {
    return { kind: 'enroll', deviceId: id, direction: rest[0] };
  }
  return null;
}

/**
 * Topic isolation rule shared by both broker adapters: a device may touch only its own subtree,
 * and only in the direction the contract gives it.
 */
export function deviceMayPublish(deviceId: string, topic: string): boolean {
  const t = parseTopic(topic);
  if (!t || t.kind !== 'device' || t.deviceId !== deviceId) return false;
  return ['birth', 'status', 'heartbeat', 'report', 'xfer/req'].includes(t.channel);
}

export function deviceMaySubscribe(deviceId: string, filter: string): boolean {
  return filter === deviceTopic(deviceId, 'cmd') || filter === deviceTopic(deviceId, 'xfer/data');
}

/** An enrolling agent (enrollment token, no device credential yet) may only ask and hear the answer for its own id. */
export function enrolleeMayPublish(clientId: string, topic: string): boolean {
  const t = parseTopic(topic);
  return t?.kind === 'enroll' && t.direction === 'req' && clientId === enrollClientId(t.deviceId);
}

export function enrolleeMaySubscribe(clientId: string, filter: string): boolean {
  const t = parseTopic(filter);
  return t?.kind === 'enroll' && t.direction === 'res' && clientId === enrollClientId(t.deviceId);
}

/**
 * An enrolling agent connects as `enroll-<deviceId>`, an enrolled one as `<deviceId>`. The prefix is
 * reserved for device ids, so an enrollee can never take over an enrolled device's session, while
 * many devices enrolling with one token at once each keep their own client id.
 */
export const ENROLL_CLIENT_PREFIX = 'enroll-';
export const enrollClientId = (deviceId: string): string => `${ENROLL_CLIENT_PREFIX}${deviceId}`;
/** The device id an enrollee's client id names, or null when it is not an enrollee client id. */
export function enrolleeDeviceId(clientId: string): string | null {
  if (!clientId.startsWith(ENROLL_CLIENT_PREFIX)) return null;
  const id = clientId.slice(ENROLL_CLIENT_PREFIX.length);
  return isValidDeviceId(id) ? id : null;
}

/**
 * Enrollment tokens look like `<tokenId>.<secret>`; on the broker the enrollee logs in as
 * `enroll-<tokenId>` with the secret as password, so one token can be revoked on its own.
 */
export const enrollUsername = (tokenId: string): string => `enroll-${tokenId}`;
export function splitEnrollmentToken(token: string): { tokenId: string; secret: string } | null {
  const m = /^([a-z0-9]{6,32})\.([A-Za-z0-9_-]{16,128})$/.exec(token);
  return m && m[1] && m[2] ? { tokenId: m[1], secret: m[2] } : null;
}
export const CONTROL_PLANE_USERNAME = 'edgefleet-control-plane';
