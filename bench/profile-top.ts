/** Prints the functions with the most self time in a V8 .cpuprofile: `node profile-top.js FILE [N]`. */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}
const [file, count = '35'] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file!, 'utf8')) as { nodes: Node[] };
const self = new Map<string, number>();
let total = 0;
for (const node of profile.nodes) {
  const { functionName, url, lineNumber } = node.callFrame;
  const key = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '~/').replace(/^file:\/\/\/work\/main\//, '')}:${lineNumber + 1}`;
  if (functionName === '(idle)') continue; // shares of busy time only
  self.set(key, (self.get(key) ?? 0) + node.hitCount);
  total += node.hitCount;
}
const byModule = new Map<string, number>();
for (const [key, hits] of self) {
  const url = key.split(' ').slice(1).join(' ');
  const module = url.startsWith('~/') ? url.split('/').slice(0, url.startsWith('~/@') ? 3 : 2).join('/') : url.startsWith('node:') ? url.split(':')[0] + ':' + url.split(':')[1] : url === ':0' ? '(native/gc)' : url.split(':')[0]!;
  byModule.set(module, (byModule.get(module) ?? 0) + hits);
}
console.log('by module:');
for (const [m, h] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${((h / total) * 100).toFixed(1).padStart(5)}%  ${m}`);
console.log('by function:');
for (const [k, h] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(count))) console.log(`${((h / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
