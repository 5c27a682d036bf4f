/**
 * Page-cache writes on this host. On the dev VM (Firecracker) memory the guest has not touched for a while is backed
 * again by the host on first touch: a file written into such pages went at 0.4-1.1 GB/s, the same file written again
 * right after deleting the first (its pages reused) at 3.8-4.8 GB/s (dd, 400 MiB, 256 KiB blocks). Agents write every
 * chunk they receive; raw subscribers write nothing, so that first-touch cost falls on one side of a delivery/raw pair.
 */
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const BLOCK = 4 * 1024 * 1024;

/** Writes `bytes` into a new file in `dir` and deletes it, so the kernel's free pages are ones just touched; MiB/s of the write. */
export function touchPageCache(dir: string, bytes: number): number {
  const path = join(dir, `page-cache-${process.pid}.bin`);
  const block = Buffer.alloc(BLOCK, 0x5a);
  const t0 = performance.now();
  const fd = openSync(path, 'w');
  try {
    for (let at = 0; at < bytes; at += BLOCK) writeSync(fd, block, 0, Math.min(BLOCK, bytes - at), at);
  } finally {
    closeSync(fd);
  }
  const s = (performance.now() - t0) / 1000;
  rmSync(path, { force: true });
  return bytes / 1024 / 1024 / s;
}
