import { z } from 'zod';

/**
 * The one id rule of EdgeFleet (issue 8, items 2 and 10). Device, enrollment-token, model, transfer, rollout, delivery,
 * tuning, job, profile and recipe ids all follow it, everywhere they cross a boundary (HTTP path/body, MQTT topic and
 * payload, manifest, state file, broker login).
 *
 * Pattern: `^[a-z0-9]` then `[a-z0-9_-]` or a `.` followed by one of those; 1..64 characters (model ids 1..128,
 * because they are composed as `<job name>-<recipe id>[-ptq]`).
 * Why each part:
 * - lower-case only: ids become directory names on the agent (model store) and the control plane, and macOS and
 *   Windows file systems fold case, so `Model` and `model` would share a folder while being two ids everywhere else;
 * - first character a letter or digit: no `-x` read as a command-line option, no `.x` hidden/dot file, no `_`;
 * - a dot only between two other characters: never `.`/`..` or a `..` inside, so an id can never climb out of the
 *   folder it is joined to, and no trailing dot (Windows drops it, aliasing `a.` with `a`);
 * - no `/ + # $ %` or spaces: ids are MQTT topic levels (`+`/`#` are wildcards, `$` starts broker-internal topics)
 *   and URL path segments; nothing needs escaping, so what is logged is what was matched;
 * - 64 characters: fits a Mosquitto username/client id and a file name with room for suffixes.
 *
 * Reserved (refused for every kind, so a model or rollout id can never later become a clash either):
 * - `edgefleet-*`: the control plane's broker login (`edgefleet-control-plane`), its MQTT client ids
 *   (`edgefleet-cp-*`, `edgefleet-dynsec-*`) and every dynamic-security role it creates (`edgefleet-device-*`,
 *   `edgefleet-enrollee`, `edgefleet-control-plane`). A device id is a broker username, so enrolling
 *   `edgefleet-control-plane` made the control plane delete its own admin client;
 * - `enroll-*`: the broker login of each enrollment token (`enroll-<token id>`);
 * - `edgefleet`, `admin`, `anonymous`, `mosquitto`, `root`: names a broker setup commonly gives the admin
 *   client/role or the anonymous group (the control plane also refuses its own configured broker username:
 *   `checkId(kind, id, { reserved: [username] })`);
 * - Windows device file names (`con`, `nul`, `com1`, ... with or without an extension): a folder with that name
 *   cannot be created or opened on a Windows agent.
 * `$` (broker-internal names such as `$SYS`, `$CONTROL`) cannot occur: the pattern has no `$`.
 */

export type IdKind = 'device' | 'token' | 'model' | 'transfer' | 'rollout' | 'delivery' | 'tuning' | 'job' | 'profile' | 'recipe';

export const ID_MAX_LENGTH = 64;
export const MODEL_ID_MAX_LENGTH = 128;

const PATTERN = /^[a-z0-9](?:[a-z0-9_-]|\.(?=[a-z0-9_-]))*$/;

export const RESERVED_ID_PREFIXES: readonly string[] = ['edgefleet-', 'enroll-'];
export const RESERVED_IDS: readonly string[] = ['edgefleet', 'admin', 'anonymous', 'mosquitto', 'root'];
const WINDOWS_DEVICE_NAME = /^(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\.|$)/;

const maxLength = (kind: IdKind): number => (kind === 'model' ? MODEL_ID_MAX_LENGTH : ID_MAX_LENGTH);

export type IdCheck = { ok: true } | { ok: false; error: string };

/** Checks one id; the error names the kind, the id (truncated, JSON-quoted) and the rule it broke. */
export function checkId(kind: IdKind, id: unknown, opts: { reserved?: readonly string[] } = {}): IdCheck {
  if (typeof id !== 'string') return { ok: false, error: `${kind} id must be a string` };
  const shown = JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id);
  const max = maxLength(kind);
  if (id.length < 1 || id.length > max) return { ok: false, error: `${kind} id ${shown} must be 1-${max} characters` };
  if (!PATTERN.test(id)) {
    return { ok: false, error: `${kind} id ${shown}: use lower-case letters, digits, '_', '-' and single inner dots, starting with a letter or digit` };
  }
  const prefix = RESERVED_ID_PREFIXES.find((p) => id.startsWith(p));
  if (prefix) return { ok: false, error: `${kind} id ${shown} is reserved: the prefix "${prefix}" names broker logins and roles of the control plane` };
  if (RESERVED_IDS.includes(id) || opts.reserved?.includes(id)) return { ok: false, error: `${kind} id ${shown} is reserved` };
  if (WINDOWS_DEVICE_NAME.test(id)) return { ok: false, error: `${kind} id ${shown} is reserved: a Windows device file name` };
  return { ok: true };
}

export const isValidId = (kind: IdKind, id: unknown): id is string => checkId(kind, id).ok;

/** A zod schema for one id kind; its message is the rule that was broken. */
export function idSchema(kind: IdKind) {
  return z
    .string()
    .max(maxLength(kind) * 4) // bound the work before the rule runs; the rule's own length check gives the message
    .superRefine((id, ctx) => {
      const r = checkId(kind, id);
      if (!r.ok) ctx.addIssue({ code: 'custom', message: r.error });
    });
}

export const DeviceIdSchema = idSchema('device');
export const TokenIdSchema = idSchema('token');
export const ModelIdSchema = idSchema('model');
export const TransferIdSchema = idSchema('transfer');
export const RolloutIdSchema = idSchema('rollout');
export const DeliveryIdSchema = idSchema('delivery');
export const TuningIdSchema = idSchema('tuning');
export const JobIdSchema = idSchema('job');
export const ProfileIdSchema = idSchema('profile');
export const RecipeIdSchema = idSchema('recipe');
