import { DeviceFactsSchema, type DeviceFacts } from '../../shared/facts.ts';

const ARM = 'fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp'.split(' ');

/** Facts of real device kinds, one per profile, for simulated agents (`facts` overrides the probe). */
export const SIMULATED: { kind: string; expectProfile: string; facts: DeviceFacts }[] = [
  {
    kind: 'raspberry-pi-5',
    expectProfile: 'armv82-dotprod',
    facts: DeviceFactsSchema.parse({ hostname: 'pi5', platform: 'linux', arch: 'arm64', cpu: { manufacturer: 'ARM', brand: 'Cortex-A76', cores: 4, flags: ARM }, memoryBytes: 8e9, deviceTreeModel: 'Raspberry Pi 5 Model B Rev 1.0' }),
  },
  {
    kind: 'jetson-orin',
    expectProfile: 'jetson-trt-int8',
    facts: DeviceFactsSchema.parse({
      hostname: 'orin',
      platform: 'linux',
      arch: 'arm64',
      cpu: { manufacturer: 'ARM', brand: 'Cortex-A78AE', cores: 6, flags: ARM },
      memoryBytes: 8e9,
      deviceTreeModel: 'NVIDIA Jetson Orin Nano Developer Kit',
      tegraRelease: '# R36 (release), REVISION: 3.0',
      hasTrtexec: true,
    }),
  },
  {
    kind: 'm1-mac',
    expectProfile: 'iphone-class-cpu',
    facts: DeviceFactsSchema.parse({ hostname: 'mac', platform: 'darwin', arch: 'arm64', cpu: { manufacturer: 'Apple', brand: 'Apple M1', cores: 8 }, memoryBytes: 16e9 }),
  },
  {
    kind: 'zen4-vnni',
    expectProfile: 'x86-64-vnni',
    facts: DeviceFactsSchema.parse({ hostname: 'zen', platform: 'linux', arch: 'x64', cpu: { manufacturer: 'AMD', brand: 'AMD EPYC', cores: 2, flags: ['avx2', 'avx512f', 'avx512_vnni'] }, memoryBytes: 24e9 }),
  },
  {
    kind: 'haswell-avx2',
    expectProfile: 'generic-cpu',
    facts: DeviceFactsSchema.parse({ hostname: 'old', platform: 'linux', arch: 'x64', cpu: { manufacturer: 'Intel', brand: 'Xeon E5-2680 v3', cores: 24, flags: ['avx', 'avx2', 'fma'] }, memoryBytes: 64e9 }),
  },
];
