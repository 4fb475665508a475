#!/usr/bin/env node
// Self time by function of the V8 CPU profile(s) in DIR (node --cpu-prof): where a process's CPU
// time went, for the per-call cost of docs/performance-webgpu.md. Usage: cpuprofile-top.mjs DIR [N]
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const dir = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!dir || !existsSync(dir)) { console.log(`no profile directory ${dir}`); process.exit(0); }
const self = new Map();
for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  const us = new Map();
  p.samples.forEach((s, i) => us.set(s, (us.get(s) ?? 0) + (p.timeDeltas[i] ?? 0)));
  for (const n of p.nodes) {
    const cf = n.callFrame;
    const key = `${cf.functionName || '(anonymous)'} ${cf.url.split('/').slice(-3).join('/')}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (us.get(n.id) ?? 0));
  }
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`total ${(total / 1000).toFixed(1)} ms of samples; top ${top} by self time:`);
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(v / 1000).toFixed(1).padStart(9)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
