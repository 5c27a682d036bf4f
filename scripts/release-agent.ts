/**
 * Builds the agent for a device: plain JavaScript (esbuild bundles agent/, shared/, mqtt, zod, systeminformation into
 * two ES modules) plus the one native dependency it needs, onnxruntime-node, with only the target's binary. A device
 * runs it with Node 20 and nothing else: no tsx, no esbuild, no compiler, no npm install (a node_modules installed
 * on x64 carries x64 esbuild and x64 native addons, which is why the TypeScript sources do not start on arm64).
 *
 *   node --import tsx scripts/release-agent.ts [--target linux-arm64|linux-x64|darwin-arm64]... [--out dist]
 *
 * writes dist/edgefleet-agent-<version>-<os>-<arch>.tar.gz (all three targets without --target). Layout inside
 * (one top folder, edgefleet-agent-<version>-<os>-<arch>/):
 *   bin/edgefleet-agent                   sh launcher: finds Node >= 20 (EDGEFLEET_NODE, else `node` on PATH)
 *   lib/agent.mjs, lib/worker-entry.mjs   the agent and its benchmark child process
 *   lib/*.json                            the built-in device profiles (read next to agent.mjs at run time)
 *   node_modules/onnxruntime-node/        its JS, package.json and bin/napi-v6/<os>/<arch>/ only
 *   node_modules/onnxruntime-common/
 *   packaging/                            systemd unit and launchd plist (see README "Running the agent on real devices")
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { AGENT_VERSION } from '../agent/version.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const AGENT_TARGETS = ['linux-arm64', 'linux-x64', 'darwin-arm64'] as const;
export type AgentTarget = (typeof AGENT_TARGETS)[number];

const LAUNCHER = `#!/bin/sh
# EdgeFleet agent launcher: plain JavaScript, needs only Node.js 20 or newer.
# Node: $EDGEFLEET_NODE if set, else the first \`node\` on PATH.
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
node_bin="\${EDGEFLEET_NODE:-node}"
if ! command -v "$node_bin" >/dev/null 2>&1; then
  echo "edgefleet-agent: Node.js 20 or newer is needed (not found: $node_bin; set EDGEFLEET_NODE to its path)" >&2
  exit 64
fi
major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "edgefleet-agent: Node.js 20 or newer is needed, found $("$node_bin" --version) at $(command -v "$node_bin")" >&2
  exit 64
fi
exec "$node_bin" "$here/lib/agent.mjs" "$@"
`;

// esbuild's ESM output has no `require`; the CommonJS packages it bundles (mqtt's deps, systeminformation) need one
const BANNER = "import { createRequire as __efCreateRequire } from 'node:module'; const require = __efCreateRequire(import.meta.url);";

export async function buildAgentTarball(target: AgentTarget, outDir: string): Promise<string> {
  const [os, arch] = target.split('-') as [string, string];
  const name = `edgefleet-agent-${AGENT_VERSION}-${target}`;
  const stage = mkdtempSync(join(tmpdir(), 'ef-release-'));
  const top = join(stage, name);
  try {
    const lib = join(top, 'lib');
    mkdirSync(lib, { recursive: true });
    await build({
      // worker-entry.mjs is named after the source's plain-JS entry, so runner.ts's `new URL('./worker-entry.mjs', import.meta.url)` finds it next to agent.mjs
      entryPoints: { agent: join(ROOT, 'agent', 'main.ts'), 'worker-entry': join(ROOT, 'agent', 'benchmark', 'worker.ts') },
      outdir: lib,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // native (a per-arch .node loaded by a computed require): shipped as files below, not bundled
      external: ['onnxruntime-node'],
      // ws's optional native speed-ups: absent, and ws falls back to JS without them
      banner: { js: BANNER },
      legalComments: 'none',
      logLevel: 'warning',
    });
    for (const f of readdirSync(join(ROOT, 'device-profiles')).filter((n) => n.endsWith('.json'))) cpSync(join(ROOT, 'device-profiles', f), join(lib, f));

    const ortSrc = join(ROOT, 'node_modules', 'onnxruntime-node');
    const ortVersion = (JSON.parse(readFileSync(join(ortSrc, 'package.json'), 'utf8')) as { version: string }).version;
    const napi = readdirSync(join(ortSrc, 'bin')).find((d) => d.startsWith('napi-v'));
    if (!napi || !existsSync(join(ortSrc, 'bin', napi, os, arch, 'onnxruntime_binding.node'))) throw new Error(`onnxruntime-node ${ortVersion} has no binary for ${target}`);
    const ortDst = join(top, 'node_modules', 'onnxruntime-node');
    mkdirSync(join(ortDst, 'bin', napi, os), { recursive: true });
    // package.json without its postinstall (a CUDA downloader): nothing on the device runs npm, but leave no trap
    const ortPkg = JSON.parse(readFileSync(join(ortSrc, 'package.json'), 'utf8')) as Record<string, unknown>;
    delete ortPkg.scripts;
    delete ortPkg.devDependencies;
    writeFileSync(join(ortDst, 'package.json'), JSON.stringify(ortPkg, null, 2));
    cpSync(join(ortSrc, 'dist'), join(ortDst, 'dist'), { recursive: true, filter: (p) => !p.endsWith('.map') && !p.endsWith('.d.ts') });
    cpSync(join(ortSrc, 'bin', napi, os, arch), join(ortDst, 'bin', napi, os, arch), { recursive: true, verbatimSymlinks: true });
    for (const f of ['LICENSE', 'README.md', 'ThirdPartyNotices.txt']) if (existsSync(join(ortSrc, f))) cpSync(join(ortSrc, f), join(ortDst, f));
    // its compiled dist/ only: lib/ is the TypeScript source, .d.ts and .map are for editors
    cpSync(join(ROOT, 'node_modules', 'onnxruntime-common'), join(top, 'node_modules', 'onnxruntime-common'), { recursive: true, filter: (p) => !/\.(map|ts)$/.test(p) && !/onnxruntime-common[\\/]lib([\\/]|$)/.test(p) });

    mkdirSync(join(top, 'bin'));
    writeFileSync(join(top, 'bin', 'edgefleet-agent'), LAUNCHER);
    chmodSync(join(top, 'bin', 'edgefleet-agent'), 0o755);
    cpSync(join(ROOT, 'agent', 'packaging'), join(top, 'packaging'), { recursive: true });
    writeFileSync(join(top, 'VERSION'), `edgefleet-agent ${AGENT_VERSION} ${target} (onnxruntime-node ${ortVersion}); needs Node.js >= 20\n`);

    mkdirSync(outDir, { recursive: true });
    const tarball = join(outDir, `${name}.tar.gz`);
    const tar = spawnSync('tar', ['-czf', tarball, '--owner=0', '--group=0', '-C', stage, name], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr || tar.error?.message}`);
    return tarball;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { target: { type: 'string', multiple: true }, out: { type: 'string' } } });
  const targets = values.target ?? [...AGENT_TARGETS];
  const bad = targets.filter((t) => !(AGENT_TARGETS as readonly string[]).includes(t));
  if (bad.length > 0) {
    console.error(`unknown --target ${bad.join(', ')} (expected ${AGENT_TARGETS.join(', ')})`);
    process.exit(64);
  }
  const out = resolve(values.out ?? join(ROOT, 'dist'));
  for (const t of targets) console.log(await buildAgentTarball(t as AgentTarget, out));
}
