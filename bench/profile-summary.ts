import fs from 'node:fs';
import path from 'node:path';

/**
 * Top self-time functions of V8 .cpuprofile files, as written by the server when the bench runs
 * with BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR":
 *
 *   node --import tsx bench/profile-summary.ts DIR/CPU.*.cpuprofile [--top 25]
 *
 * Per file: the profile's wall time, the share spent idle, in garbage collection and in the
 * program, then the functions with the most self time (time sampled in the function itself, not
 * in what it calls), each with its file and line.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
const files = args.filter((a, k) => a !== '--top' && (topAt < 0 || k !== topAt + 1));
if (files.length === 0) {
  process.stderr.write('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile… [--top N]\n');
  process.exit(2);
}

for (const file of files) summarize(file);

function summarize(file: string): void {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // self time per sample: the delta to the next sample is the time the sampled node ran
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  for (let k = 0; k < profile.samples.length; k++) {
    const node = byId.get(profile.samples[k])!;
    const us = profile.timeDeltas[k + 1] ?? 0;
    totalUs += us;
    const f = node.callFrame;
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}\t${where}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + us);
  }
  const share = (name: string) => ((selfUs.get(`${name}\t`) ?? 0) / totalUs) * 100;
  process.stdout.write(
    `\n${path.basename(file)}: ${(totalUs / 1e6).toFixed(2)} s sampled; idle ${share('(idle)').toFixed(1)}%, ` +
      `GC ${share('(garbage collector)').toFixed(1)}%, program ${share('(program)').toFixed(1)}%\n`,
  );
  const busy = [...selfUs].filter(([k]) => !/^\((idle|garbage collector|program|root)\)\t/.test(k)).sort((a, b) => b[1] - a[1]);
  for (const [key, us] of busy.slice(0, top)) {
    const [name, where] = key.split('\t');
    process.stdout.write(`${((us / totalUs) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}  ${where}\n`);
  }
}

function shortUrl(url: string): string {
  const p = url.replace(/^file:\/\//, '');
  const nm = p.lastIndexOf('/node_modules/');
  if (nm >= 0) return p.slice(nm + '/node_modules/'.length);
  const src = p.search(/\/(src|bench|bin)\//);
  return src >= 0 ? p.slice(src + 1) : p;
}
