import { z } from 'zod';
import { DeviceFactsSchema } from '../facts.ts';
import { Millis, page } from './common.ts';

/** Answers of /devices, /devices/:id and /reports/fleet. */

export const DeviceStatusSchema = z.enum(['unknown', 'online', 'offline', 'revoked']);
export const ModelRefSchema = z.object({ modelId: z.string(), version: z.number().int() });

/** The newest heartbeat a device sent (the envelope's v and msgId are not part of the contract). */
export const HeartbeatViewSchema = z.object({
  ts: Millis,
  agentVersion: z.string(),
  uptimeSeconds: z.number(),
  load1: z.number(),
  cpuPercent: z.number().nullable(),
  memUsedBytes: z.number(),
  memTotalBytes: z.number(),
  temperatureC: z.number().nullable(),
  activeModel: ModelRefSchema.nullable(),
});

export const DeviceViewSchema = z.object({
  id: z.string(),
  status: DeviceStatusSchema,
  profileId: z.string().nullable(),
  /** matched | fallback | override | hint | ... : how the profile was chosen. */
  profileReason: z.string().nullable(),
  profileOverride: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  agentVersion: z.string().nullable(),
  lastSeen: Millis.nullable(),
  createdAt: Millis,
  revokedAt: Millis.nullable(),
  currentModel: ModelRefSchema.nullable(),
  facts: DeviceFactsSchema.nullable(),
  heartbeat: HeartbeatViewSchema.nullable(),
  births: z.number().int(),
});

/** One profile's match rules against this device's facts: which failed (empty: it matches). */
export const ProfileMatchViewSchema = z.object({ profileId: z.string(), priority: z.number(), matches: z.boolean(), failedRules: z.array(z.string()) });

export const DeviceDetailSchema = DeviceViewSchema.extend({
  statusHistory: z.array(z.object({ status: z.string(), reason: z.string(), at: Millis })),
  /** Every profile's rules against the facts, so a fallback (generic-cpu) says what the specific profiles missed. */
  profileMatches: z.array(ProfileMatchViewSchema),
  /** Recent health points, oldest first (one per minute at most, two hours): the load, memory and temperature charts. */
  heartbeats: z.array(
    z.object({ at: Millis, load1: z.number(), cpuPercent: z.number().nullable(), memUsedBytes: z.number(), memTotalBytes: z.number(), temperatureC: z.number().nullable() }),
  ),
});

export const DeviceListSchema = page(DeviceViewSchema);
export const DeviceRevokedSchema = z.object({ id: z.string(), revoked: z.literal(true) });
export const DeviceRebirthSchema = z.object({ id: z.string(), sent: z.literal('rebirth') });

export const FleetReportSchema = z.object({
  generatedAt: Millis,
  devices: z.number().int(),
  byStatus: z.record(z.string(), z.number().int()),
  byProfile: z.array(z.object({ profileId: z.string(), name: z.string(), devices: z.number().int(), online: z.number().int(), offline: z.number().int(), lastSeen: Millis.nullable() })),
  byAgentVersion: z.record(z.string(), z.number().int()),
  unassigned: z.number().int(),
  /** One page of the unrevoked devices, longest silent first (`?limit=&offset=`); lastSeenPage says where it sits. */
  lastSeen: z.array(z.object({ id: z.string(), status: z.string(), profileId: z.string().nullable(), lastSeen: Millis.nullable(), secondsAgo: z.number().nullable() })),
  lastSeenPage: z.object({ total: z.number().int(), limit: z.number().int(), offset: z.number().int() }),
});

export type DeviceView = z.infer<typeof DeviceViewSchema>;
export type DeviceDetail = z.infer<typeof DeviceDetailSchema>;
export type FleetReport = z.infer<typeof FleetReportSchema>;
