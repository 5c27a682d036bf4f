import { createHash } from 'node:crypto';

/** The one byte hasher: hex SHA-256 of bytes, or of a string's UTF-8. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export type StreamHash = { sha256: string; size: number; chunkSha256: string[] };

/**
 * The one file hasher (registry, transfer server and agent download all use it): SHA-256 of a byte
 * stream and its length, and, given `chunkSize`, the SHA-256 of every `chunkSize` piece (a transfer's
 * chunk hashes), however the stream happens to split its reads. The caller opens the file
 * (`createReadStream(path)`): nothing in shared/ does I/O.
 */
export async function sha256Stream(source: AsyncIterable<Uint8Array>, chunkSize?: number): Promise<StreamHash> {
  if (chunkSize !== undefined && !(Number.isInteger(chunkSize) && chunkSize > 0)) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  const whole = createHash('sha256');
  const chunkSha256: string[] = [];
  let size = 0;
  let piece = chunkSize ? createHash('sha256') : null;
  let inPiece = 0;
  for await (const part of source) {
    whole.update(part);
    size += part.byteLength;
    if (!chunkSize || !piece) continue;
    let o = 0;
    while (o < part.byteLength) {
      const take = Math.min(chunkSize - inPiece, part.byteLength - o);
      piece.update(part.subarray(o, o + take));
      inPiece += take;
      o += take;
      if (inPiece === chunkSize) {
        chunkSha256.push(piece.digest('hex'));
        piece = createHash('sha256');
        inPiece = 0;
      }
    }
  }
  // the last, shorter chunk; an empty stream still has one (empty) chunk, as chunkCount() says
  if (chunkSize && piece && (inPiece > 0 || chunkSha256.length === 0)) chunkSha256.push(piece.digest('hex'));
  return { sha256: whole.digest('hex'), size, chunkSha256 };
}
