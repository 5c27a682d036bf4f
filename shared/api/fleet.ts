import { z } from 'zod';
import { DeviceProfileSchema } from '../profile.ts';
import { Millis } from './common.ts';

/** Answers of /profiles, /enrollment-tokens and the system routes. */

export const ProfileListSchema = z.object({ items: z.array(DeviceProfileSchema), counts: z.record(z.string(), z.number().int()) });
export const ProfileSchema = DeviceProfileSchema;

/** Created token: the only answer that carries the secret (`token`), shown once. */
export const EnrollmentTokenCreatedSchema = z.object({
  id: z.string(),
  token: z.string(),
  label: z.string(),
  expiresAt: Millis.nullable(),
  maxUses: z.number().int().nullable(),
  brokerUrl: z.string(),
  topicRoot: z.string(),
});

export const EnrollmentTokenViewSchema = z.object({
  id: z.string(),
  label: z.string(),
  createdAt: Millis,
  expiresAt: Millis.nullable(),
  maxUses: z.number().int().nullable(),
  uses: z.number().int(),
  revokedAt: Millis.nullable(),
  usable: z.boolean(),
  /** 'usable' or why not (revoked, expired, used up). */
  state: z.string(),
});
export const EnrollmentTokenListSchema = z.object({ items: z.array(EnrollmentTokenViewSchema) });
export const EnrollmentTokenRevokedSchema = z.object({ id: z.string(), revoked: z.literal(true) });

export const HealthSchema = z.object({ ok: z.boolean(), db: z.boolean(), mqtt: z.boolean(), broker: z.string(), version: z.string() });
export const SigningKeySchema = z.object({ algorithm: z.literal('ed25519'), publicKeyPem: z.string() });
export const OpenApiSchema = z.object({ openapi: z.string(), info: z.object({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.record(z.string(), z.unknown())) });

export type EnrollmentTokenCreated = z.infer<typeof EnrollmentTokenCreatedSchema>;
