import { z } from 'zod';

/** What an agent learns about its machine. Matched against profile rules; stored per device. */
export const DeviceFactsSchema = z.object({
  hostname: z.string().max(255).default(''),
  platform: z.string().min(1).max(32), // node's process.platform: linux, darwin, win32, ...
  arch: z.string().min(1).max(32), // node's process.arch: x64, arm64, arm, ...
  os: z
    .object({ distro: z.string().max(128).default(''), release: z.string().max(64).default(''), kernel: z.string().max(128).default('') })
    .default({ distro: '', release: '', kernel: '' }),
  cpu: z.object({
    manufacturer: z.string().max(128).default(''),
    brand: z.string().max(256).default(''),
    cores: z.number().int().min(1).max(4096),
    physicalCores: z.number().int().min(0).max(4096).default(0),
    /** Lower-case CPU feature flags (x86 `flags`, ARM `Features` of /proc/cpuinfo). */
    flags: z.array(z.string().max(64)).max(1024).default([]),
  }),
  memoryBytes: z.number().int().nonnegative().max(2 ** 50),
  gpus: z.array(z.object({ vendor: z.string().max(128).default(''), model: z.string().max(256).default('') })).max(16).default([]),
  /** /proc/device-tree/model, where present (boards). */
  deviceTreeModel: z.string().max(256).nullable().default(null),
  /** First line of /etc/nv_tegra_release, where present (Jetson L4T). */
  tegraRelease: z.string().max(256).nullable().default(null),
  /** Whether TensorRT's trtexec is on the device. */
  hasTrtexec: z.boolean().default(false),
});

export type DeviceFacts = z.infer<typeof DeviceFactsSchema>;
export type DeviceFactsInput = z.input<typeof DeviceFactsSchema>;
