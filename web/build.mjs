// Builds the page into dist/: app.js and app.css (minified bundles) and index.html.
// `node build.mjs --check` builds in memory and fails if dist/ differs, so the committed
// bundle, which the local runner serves without Node, always matches the sources.

import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import * as esbuild from 'esbuild'

const root = dirname(fileURLToPath(import.meta.url))
const dist = join(root, 'dist')
const check = process.argv.includes('--check')

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: 'src/main.js', 'app-style': 'src/style.css' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022', 'chrome109', 'firefox115', 'safari16'],
  legalComments: 'none',
  charset: 'utf8',
  loader: { '.svg': 'dataurl', '.png': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl' },
  outdir: 'dist',
  write: false,
  logLevel: 'warning',
})

// esbuild names a CSS entry's output after the entry; the page loads /app.css.
const outputs = new Map()
for (const file of result.outputFiles) {
  const name = file.path.slice(dist.length + 1).replace(/^app-style\.css$/, 'app.css')
  outputs.set(name, Buffer.from(file.contents))
}
outputs.set('index.html', await readFile(join(root, 'src/index.html')))

const stale = []
for (const [name, contents] of outputs) {
  const path = join(dist, name)
  if (check) {
    const current = await readFile(path).catch(() => null)
    if (!current || !current.equals(contents)) stale.push(name)
  } else {
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, contents)
  }
  const gz = gzipSync(contents, { level: 9 }).length
  console.log(`${name.padEnd(12)} ${String(contents.length).padStart(8)} bytes, ${String(gz).padStart(7)} gzip`)
}
if (stale.length) {
  console.error(`web/dist is stale (${stale.join(', ')}): run \`npm run build\` in web/ and commit dist/`)
  process.exit(1)
}
