/** CONNACK return codes of MQTT 3.1.1 that mean "these credentials are refused" (4 bad user name or password, 5 not authorized). */
export function isAuthRefusal(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 4 || code === 5 || code === 134 || code === 135;
}
