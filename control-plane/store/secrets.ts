import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Hashes of machine-generated secrets (enrollment-token secrets, device passwords: at least 128
 * random bits). For secrets that cannot be guessed, a salted SHA-256 is enough and costs
 * microseconds per broker login instead of scrypt's tens of milliseconds; `verifySecret` still
 * reads scrypt hashes, so a future human-chosen secret can use one.
 */
export function hashSecret(secret: string): string {
  const salt = randomBytes(16);
  return `sha256$${salt.toString('base64')}$${createHash('sha256').update(salt).update(secret).digest('base64')}`;
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  let expected: Buffer;
  let actual: Buffer;
  if (parts[0] === 'sha256' && parts.length === 3) {
    const salt = Buffer.from(parts[1]!, 'base64');
    expected = Buffer.from(parts[2]!, 'base64');
    actual = createHash('sha256').update(salt).update(secret).digest();
  } else if (parts[0] === 'scrypt' && parts.length === 6) {
    const [, n, r, p, saltB64, hashB64] = parts as [string, string, string, string, string, string];
    expected = Buffer.from(hashB64, 'base64');
    actual = await new Promise<Buffer>((resolve, reject) =>
      scrypt(secret, Buffer.from(saltB64, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p) }, (err, key) => (err ? reject(err) : resolve(key))),
    );
  } else {
    return false;
  }
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}
