const p = JSON.parse(require('fs').readFileSync(process.argv[2]));
const nodes = new Map(p.nodes.map(n => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas; let total = 0;
for (let i = 0; i < p.samples.length; i++) { const n = nodes.get(p.samples[i]); const d = dt[i] || 0; total += d; const k = n.callFrame.functionName + ' ' + n.callFrame.url.split('/').slice(-2).join('/') + ':' + n.callFrame.lineNumber; self.set(k, (self.get(k) || 0) + d); }
const arr = [...self].sort((a, b) => b[1] - a[1]).slice(0, 30);
for (const [k, v] of arr) console.log((v / total * 100).toFixed(1).padStart(5), k);
