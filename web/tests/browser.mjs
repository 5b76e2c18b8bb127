// Drives the page in headless Chromium against a running system, as a person would: sign up,
// upload a three-part file through the Dashboard, see it listed, download it and
// compare bytes, rename it, share it (open the link elsewhere, revoke it) and delete it;
// pause a second upload and resume it; log out.
// Screenshots go to the given directory.
//
//   node tests/browser.mjs <base-url> <screenshot-dir>
//
// Chromium is the system's (CHROMIUM, default /usr/bin/chromium), driven by playwright-core.
// Exits non-zero with the reason on the first failed expectation.

import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { chromium } from 'playwright-core'

const [base, shotDir] = process.argv.slice(2)
if (!base || !shotDir) {
  console.error('usage: node tests/browser.mjs <base-url> <screenshot-dir>')
  process.exit(2)
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium'
const MIB = 1024 * 1024
/** Three 8 MiB parts: 8 + 8 + 4. */
const FILE_SIZE = 20 * MIB
/** Generous bounds on waiting for eventual states; nothing is asserted about speed. */
const WAIT_MS = 120_000

function expect(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`)
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')
const started = Date.now()
const stamp = (label) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${label}`)

await mkdir(shotDir, { recursive: true })
const shots = []
async function screenshot(page, name) {
  const path = resolve(shotDir, name)
  await page.screenshot({ path, fullPage: true })
  shots.push(path)
  console.log(`screenshot: ${path}`)
}

const work = join(tmpdir(), `filestore-web-${randomBytes(6).toString('hex')}`)
await mkdir(work, { recursive: true })
const fileName = `photos ${randomBytes(3).toString('hex')}.bin`
const filePath = join(work, fileName)
const bytes = randomBytes(FILE_SIZE)
await writeFile(filePath, bytes)
const expectedSha = sha256(bytes)

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
})
let failed = false
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } })
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)

  // Anything the page logs as an error fails the test, save the failed requests we cause on
  // purpose: CSP violations, CORS refusals and Uppy's "could not read the ETag header" among them.
  const consoleErrors = []
  const expectedStatuses = []
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return
    const expected = expectedStatuses.findIndex((code) => msg.text().includes(`status of ${code}`))
    if (expected >= 0) {
      expectedStatuses.splice(expected, 1)
      return
    }
    consoleErrors.push(msg.text())
  })
  page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`))

  // Every presigned part PUT, with its answer.
  const partPuts = []
  const statusReads = []
  let createdUpload = null
  const proofs = []
  page.on('response', async (response) => {
    const request = response.request()
    const url = new URL(request.url())
    if (request.method() === 'PUT' && url.searchParams.has('partNumber')) {
      partPuts.push({
        part: Number(url.searchParams.get('partNumber')),
        status: response.status(),
        origin: url.origin,
        object: url.pathname,
      })
    }
    if (request.method() === 'GET' && url.pathname.startsWith('/v1/uploads/')) {
      statusReads.push(url.pathname)
    }
    if (request.method() === 'POST' && /^\/v1\/fast-upload\/[^/]+\/proof$/.test(url.pathname)) {
      proofs.push(await response.json().catch(() => null))
    }
    if (request.method() === 'POST' && url.pathname === '/v1/uploads') {
      createdUpload = { request: request.postDataJSON(), response: await response.json().catch(() => null) }
    }
  })

  const response = await page.goto(base)
  expect(response.ok(), `GET / answered ${response.status()}`)
  expect((response.headers()['content-security-policy'] ?? '').includes("script-src 'self'"), 'the page carries its CSP')
  await page.getByRole('heading', { name: 'Log in or sign up' }).waitFor()
  await screenshot(page, '01-login.png')
  stamp('login form shown')

  // A failed login shows the server's own message.
  const username = `web_${randomBytes(5).toString('hex')}`
  const password = `pw-${randomBytes(8).toString('hex')}`
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(password)
  expectedStatuses.push(401)
  await page.getByRole('button', { name: 'Log in' }).click()
  const alert = page.getByRole('alert')
  await alert.filter({ hasText: 'wrong username or password' }).waitFor()
  stamp('failed login shows the server message')

  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign up' }).click()
  await page.locator('#whoami', { hasText: username }).waitFor()
  const storage = await page.evaluate(() => ({
    session: Object.keys(sessionStorage),
    local: Object.keys(localStorage),
    token: sessionStorage.getItem('filestore.token'),
  }))
  expect(storage.token && storage.token.split('.').length === 3, 'the token is kept in sessionStorage')
  expect(storage.local.length === 0, `nothing in localStorage (found ${storage.local})`)
  stamp(`signed up as ${username}`)

  // Upload through the Dashboard: pick the file, press its upload button.
  await page.locator('.uppy-Dashboard-input').first().setInputFiles(filePath)
  await page.locator('.uppy-StatusBar-actionBtn--upload').click()
  const row = page.locator('#files tr', { hasText: fileName })
  await row.waitFor()
  stamp('upload listed')

  // Instant upload was tried first; the server does not hold these bytes, so it answered
  // upload_required and the page uploaded them.
  expect(
    proofs.length === 1 && proofs[0]?.status === 'upload_required',
    `one instant-upload proof, answered upload_required: ${JSON.stringify(proofs)}`,
  )
  expect(createdUpload?.request?.part_size === 8 * MIB, `page asked for 8 MiB parts: ${JSON.stringify(createdUpload?.request)}`)
  expect(createdUpload?.response?.part_count === 3, `server planned 3 parts: ${JSON.stringify(createdUpload?.response)}`)
  const partNumbers = [...new Set(partPuts.map((p) => p.part))].sort()
  expect(JSON.stringify(partNumbers) === '[1,2,3]', `parts 1..3 were PUT: ${JSON.stringify(partPuts)}`)
  expect(partPuts.every((p) => p.status === 200), `every part PUT succeeded: ${JSON.stringify(partPuts)}`)
  expect(partPuts.every((p) => p.origin !== new URL(base).origin), 'parts went to S3, not through the API')
  await row.locator('td', { hasText: '20.0 MiB' }).waitFor()

  // The transfer function verifies the bytes in the background (its own tests cover that);
  // the list shows whichever state the server reports, and Refresh reloads it.
  await page.getByRole('button', { name: 'Refresh' }).click()
  await page.locator('#files-table[aria-busy="false"]').waitFor()
  const status = await row.locator('td').nth(2).textContent()
  expect(/^(Verified|Checking) · (hot|cold) storage/.test(status), `status shows verification and tier: ${status}`)
  const fileId = await row.getAttribute('data-file-id')
  stamp(`listed: ${status}`)
  await screenshot(page, '02-uploaded.png')

  // Download: the page asks for a presigned URL and navigates to it; Chromium saves the file.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row.getByRole('button', { name: `Download ${fileName}` }).click(),
  ])
  const downloaded = await readFile(await download.path())
  expect(download.suggestedFilename() === fileName, `saved as ${download.suggestedFilename()}`)
  expect(downloaded.length === FILE_SIZE, `downloaded ${downloaded.length} bytes`)
  const downloadedSha = sha256(downloaded)
  expect(downloadedSha === expectedSha, `downloaded SHA-256 ${downloadedSha} is the uploaded ${expectedSha}`)
  stamp('download matches byte for byte')

  // Rename: a name the server refuses shows its message; then a name that would be markup
  // if the page ever treated names as HTML.
  await row.getByRole('button', { name: `Rename ${fileName}` }).click()
  const nameInput = page.getByLabel(`New name for ${fileName}`)
  await nameInput.fill('a/b.bin')
  expectedStatuses.push(400)
  await page.getByRole('button', { name: 'Save' }).click()
  await alert.filter({ hasText: "name must not contain '/'" }).waitFor()
  const newName = `renamed <img src=x onerror=alert(1)> ✓ ${randomBytes(2).toString('hex')}.bin`
  await nameInput.fill(newName)
  await page.getByRole('button', { name: 'Save' }).click()
  const renamedRow = page.locator(`#files tr[data-file-id="${fileId}"]`)
  await renamedRow.locator('td.name', { hasText: newName }).waitFor()
  expect(await alert.isHidden(), 'the error is cleared after a success')
  expect((await renamedRow.locator('td.name').textContent()) === newName, 'the new name shows as text')
  expect((await page.locator('#files img').count()) === 0, 'the name is not parsed as HTML')
  const api = async (method, path) => {
    const r = await fetch(new URL(path, base), { method, headers: { Authorization: `Bearer ${storage.token}` } })
    return { status: r.status, body: r.status === 204 ? null : await r.json() }
  }
  const stored = await api('GET', `/v1/files/${fileId}`)
  expect(stored.status === 200 && stored.body.name === newName, `server has the new name: ${JSON.stringify(stored)}`)
  stamp('renamed')
  await screenshot(page, '03-renamed.png')

  // Share: create a link (a day, at most 2 downloads), copy it, open it in another browser
  // context with no session (same bytes), see it counted, revoke it, see it answer 404.
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(base).origin })
  await renamedRow.getByRole('button', { name: `Share ${newName}` }).click()
  const dialog = page.getByRole('dialog')
  await dialog.getByRole('heading', { name: `Share links for ${newName}` }).waitFor()
  expect((await page.locator('dialog img').count()) === 0, 'the name is not parsed as HTML in the dialog')
  await dialog.getByText('No live links.').waitFor()
  await dialog.getByLabel('Expires after').selectOption({ label: '1 day' })
  await dialog.getByLabel('Download limit').fill('2')
  await dialog.getByRole('button', { name: 'Create link' }).click()
  const linkField = dialog.getByLabel('New link: copy it now, it is not shown again')
  await linkField.waitFor()
  const shareUrl = await linkField.inputValue()
  expect(shareUrl.startsWith(`${new URL(base).origin}/v1/s/`), `the link is absolute on the API: ${shareUrl}`)
  const shareRows = page.locator('#shares tr')
  await shareRows.filter({ hasText: '0 of 2' }).waitFor()
  expect((await shareRows.count()) === 1, 'one live link listed')
  const expiresText = await shareRows.first().locator('td').first().textContent()
  await dialog.getByRole('button', { name: 'Copy link' }).click()
  await dialog.getByRole('status').filter({ hasText: 'Link copied.' }).waitFor()
  const copied = await page.evaluate(() => navigator.clipboard.readText())
  expect(copied === shareUrl, `the clipboard holds the link: ${copied}`)
  await screenshot(page, '04-shared.png')

  const visitor = await browser.newContext({ acceptDownloads: true })
  const visitorPage = await visitor.newPage()
  const [sharedDownload] = await Promise.all([
    visitorPage.waitForEvent('download'),
    // The navigation ends in a download, which goto reports as an error.
    visitorPage.goto(shareUrl).catch(() => {}),
  ])
  const sharedBytes = await readFile(await sharedDownload.path())
  expect(sha256(sharedBytes) === expectedSha, `the shared link downloads the same ${sharedBytes.length} bytes`)
  await visitor.close()
  stamp('share link opened by someone else, bytes equal')

  // Reopened, the dialog lists the download and no longer shows the link itself.
  await dialog.getByRole('button', { name: 'Close' }).click()
  await dialog.waitFor({ state: 'hidden' })
  await renamedRow.getByRole('button', { name: `Share ${newName}` }).click()
  await shareRows.filter({ hasText: '1 of 2' }).waitFor()
  expect(await linkField.isHidden(), 'a link is shown only when created')
  expect((await page.locator('#share-url').inputValue()) === '', 'the token left the page')
  let revokeText = null
  page.once('dialog', (d) => {
    revokeText = d.message()
    d.accept()
  })
  await dialog.getByRole('button', { name: `Revoke the link expiring ${expiresText}` }).click()
  await dialog.getByText('No live links.').waitFor()
  expect(revokeText?.startsWith('Revoke this link?'), `the page asked to confirm: ${revokeText}`)
  const revoked = await fetch(shareUrl, { redirect: 'manual' })
  expect(revoked.status === 404, `a revoked link answers 404: ${revoked.status}`)
  const listed = await api('GET', `/v1/files/${fileId}/shares`)
  expect(listed.status === 200 && listed.body.shares.length === 0, `no live links: ${JSON.stringify(listed)}`)
  await dialog.getByRole('button', { name: 'Close' }).click()
  await dialog.waitFor({ state: 'hidden' })
  stamp('share link revoked')

  // Delete, after the page asks to confirm.
  let confirmText = null
  page.once('dialog', (dialog) => {
    confirmText = dialog.message()
    dialog.accept()
  })
  await renamedRow.getByRole('button', { name: `Delete ${newName}` }).click()
  await renamedRow.waitFor({ state: 'detached' })
  expect(confirmText?.includes(newName), `the page asked to confirm: ${confirmText}`)
  await page.locator('#no-files').waitFor()
  const gone = await api('GET', `/v1/files/${fileId}`)
  expect(gone.status === 404, `the file is gone: ${gone.status}`)
  stamp('deleted')

  // Pause mid-upload and resume: the page asks the server which parts S3 holds (listParts)
  // and sends only the missing one. Part 2's PUT is held until the upload is paused.
  await page.getByRole('button', { name: 'Done' }).click()
  const resumedName = `resumed ${randomBytes(3).toString('hex')}.bin`
  const resumedPath = join(work, resumedName)
  const resumedBytes = randomBytes(12 * MIB)
  await writeFile(resumedPath, resumedBytes)
  const isPart2 = (url) => url.searchParams.get('partNumber') === '2'
  let heldRoute = null
  const part2Held = new Promise((resolveHeld) => {
    page.route(isPart2, (route) => {
      heldRoute = route
      resolveHeld()
    })
  })
  const putsBefore = partPuts.length
  await page.locator('.uppy-Dashboard-input').first().setInputFiles(resumedPath)
  await page.locator('.uppy-StatusBar-actionBtn--upload').click()
  await part2Held
  const part1Done = () => partPuts.slice(putsBefore).some((p) => p.part === 1 && p.status === 200)
  const part1Deadline = Date.now() + WAIT_MS
  while (!part1Done()) {
    expect(Date.now() < part1Deadline, 'part 1 of the paused upload arrived')
    await page.waitForTimeout(100)
  }
  await page.getByRole('button', { name: 'Pause', exact: true }).click()
  await page.getByRole('button', { name: 'Resume', exact: true }).waitFor()
  await screenshot(page, '05-paused.png')
  await heldRoute.abort().catch(() => {})
  await page.unroute(isPart2)
  const readsBefore = statusReads.length
  await page.getByRole('button', { name: 'Resume', exact: true }).click()
  const resumedRow = page.locator('#files tr', { hasText: resumedName })
  await resumedRow.waitFor()
  const resumedPuts = partPuts.slice(putsBefore)
  expect(statusReads.length > readsBefore, 'resuming asked the server for the parts done')
  expect(
    resumedPuts.filter((p) => p.part === 1).length === 1 && resumedPuts.some((p) => p.part === 2 && p.status === 200),
    `part 1 was sent once, part 2 after resuming: ${JSON.stringify(resumedPuts)}`,
  )
  const [resumedDownload] = await Promise.all([
    page.waitForEvent('download'),
    resumedRow.getByRole('button', { name: `Download ${resumedName}` }).click(),
  ])
  const resumedCopy = await readFile(await resumedDownload.path())
  expect(sha256(resumedCopy) === sha256(resumedBytes), 'the resumed upload downloads byte for byte')
  stamp('paused, resumed from the server\'s part list, downloaded')

  await page.getByRole('button', { name: 'Log out' }).click()
  await page.getByRole('heading', { name: 'Log in or sign up' }).waitFor()
  const afterLogout = await page.evaluate(() => sessionStorage.getItem('filestore.token'))
  expect(afterLogout === null, 'logging out forgets the token')
  stamp('logged out')

  expect(consoleErrors.length === 0, `the page logged no errors: ${JSON.stringify(consoleErrors, null, 2)}`)
  console.log(JSON.stringify({
    ok: true,
    seconds: (Date.now() - started) / 1000,
    size: FILE_SIZE,
    parts: partNumbers.length,
    sha256: downloadedSha,
    screenshots: shots,
  }))
} catch (e) {
  failed = true
  console.error(e.stack ?? String(e))
  for (const page of browser.contexts().flatMap((c) => c.pages())) {
    await screenshot(page, 'failure.png').catch(() => {})
  }
} finally {
  await browser.close()
  await rm(work, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)
