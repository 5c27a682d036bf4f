import { z } from 'zod';
import { ProfileIdSchema } from './ids.ts';

/** HTTP request bodies and query strings of the control plane's API. Responses are typed in the routes. */

/**
 * A query-string integer: decimal digits only. `z.coerce.number()` took `0x10` as 16, `1e3` as 1000 and `""` as 0
 * (issue 8 item 12); the one spelling of a number is the decimal one.
 */
export const decimalInt = (min: number, max: number) =>
  z
    .string()
    .max(12)
    .regex(/^(0|[1-9][0-9]*)$/, 'a decimal integer (digits only)')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const LabelKey = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.\/-]{0,62}$/, 'label keys are 1-63 of letters, digits, _ . / -');
const LabelValue = z.string().max(128);

export const DeviceListQuerySchema = z.object({
  profile: z.string().max(64).optional(),
  status: z.enum(['unknown', 'online', 'offline', 'revoked']).optional(),
  /** `key=value`, repeatable as a comma list: `site=berlin,tier=canary`. */
  label: z
    .string()
    .max(512)
    .transform((s, ctx) => {
      const out: Record<string, string> = {};
      for (const part of s.split(',').filter(Boolean)) {
        const eq = part.indexOf('=');
        const k = eq > 0 ? part.slice(0, eq) : '';
        if (!LabelKey.safeParse(k).success) {
          ctx.addIssue({ code: 'custom', message: `"${part}" is not key=value with a valid key` });
          return z.NEVER;
        }
        out[k] = part.slice(eq + 1);
      }
      return out;
    })
    .optional(),
  /** Devices whose id contains this text (letters in either case). */
  q: z.string().min(1).max(64).optional(),
  limit: decimalInt(1, 1000).default(100),
  offset: decimalInt(0, 1_000_000_000).default(0),
});

/** GET /reports/fleet: the last-seen list comes a page at a time (longest silent first). */
export const FleetReportQuerySchema = z
  .object({
    limit: decimalInt(1, 1000).default(100),
    offset: decimalInt(0, 10_000_000).default(0),
  });

export const DevicePatchSchema = z
  .object({
    /** Merged into the device's labels; a null value removes that label. */
    labels: z.record(LabelKey, LabelValue.nullable()).refine((r) => Object.keys(r).length <= 64, 'at most 64 labels').optional(),
    /** An operator's profile choice wins over matching; null returns the device to matching. */
    profileOverride: ProfileIdSchema.nullable().optional(),
  })
  .strict()
  .refine((p) => p.labels !== undefined || p.profileOverride !== undefined, { message: 'give labels or profileOverride' });

export const EnrollmentTokenCreateSchema = z
  .object({
    label: z.string().max(128).default(''),
    expiresInSeconds: z.number().int().min(60).max(365 * 24 * 3600).nullable().default(24 * 3600),
    maxUses: z.number().int().min(1).max(1_000_000).nullable().default(null),
  })
  .strict();

export type DeviceListQuery = z.infer<typeof DeviceListQuerySchema>;
export type DevicePatch = z.infer<typeof DevicePatchSchema>;
export type FleetReportQuery = z.infer<typeof FleetReportQuerySchema>;
export type EnrollmentTokenCreate = z.infer<typeof EnrollmentTokenCreateSchema>;
