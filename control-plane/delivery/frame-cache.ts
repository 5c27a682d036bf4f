/**
 * Encoded chunk frames, least recently used first out, bounded in bytes. Devices of one wave ask for the same chunks
 * at about the same time: each chunk is read from disk and framed once instead of once per device.
 */
export class FrameCache {
  private readonly frames = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(transferId: string, index: number): Buffer | undefined {
    const k = `${transferId}\0${index}`;
    const f = this.frames.get(k);
    if (f) {
      this.frames.delete(k);
      this.frames.set(k, f);
    }
    return f;
  }

  put(transferId: string, index: number, frame: Buffer): Buffer {
    if (frame.length > this.maxBytes) return frame;
    const k = `${transferId}\0${index}`;
    const old = this.frames.get(k);
    if (old) this.bytes -= old.length;
    this.frames.delete(k);
    this.frames.set(k, frame);
    this.bytes += frame.length;
    for (const [key, f] of this.frames) {
      if (this.bytes <= this.maxBytes) break;
      this.frames.delete(key);
      this.bytes -= f.length;
    }
    return frame;
  }

  dropTransfer(transferId: string): void {
    for (const [k, f] of this.frames) {
      if (k.startsWith(`${transferId}\0`)) {
        this.frames.delete(k);
        this.bytes -= f.length;
      }
    }
  }

  get size(): number {
    return this.bytes;
  }
}
