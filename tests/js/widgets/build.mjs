// Bundles page.jsx with esbuild into the folder given as the only argument (index.html,
// page.js, page.css), from tests/js/node_modules: the versions package-lock.json pins.
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = process.argv[2];
await build({
  entryPoints: [fileURLToPath(new URL('./page.jsx', import.meta.url))],
  bundle: true,
  outfile: join(out, 'page.js'),
  format: 'iife',
  jsx: 'automatic',
  loader: { '.js': 'jsx', '.svg': 'dataurl', '.png': 'dataurl', '.json': 'json' },
  define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
  minify: true,
  logLevel: 'error',
});
writeFileSync(
  join(out, 'index.html'),
  '<!doctype html><html><head><meta charset="utf-8"><title>Tollgate widgets</title>' +
    '<link rel="stylesheet" href="page.css"></head>' +
    '<body style="margin:0"><div id="root"></div><script src="page.js"></script></body></html>',
);
console.log(JSON.stringify({ built: out }));
