// Drives the page in headless Chromium against a running system, as a person would: sign up,
// upload a three-part file through the Dashboard, see it listed, download it and
// compare bytes, rename it, share it (open the link elsewhere, revoke it) and delete it;
// pause a second upload and resume it; log out. Then, on a 390x844 phone screen and on a
// 1280x800 desktop one, the folder journey: new folder, upload into it, navigate by link,
// keyboard and breadcrumbs, rename, move (with a refused name), delete a file and a folder to
// the trash, restore (refused while its folder is gone, then elsewhere), purge, empty the
// trash; at 390 px nothing may be wider than the screen.
// Screenshots (one per view and size) go to the given directory.
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

const [baseArg, shotDir] = process.argv.slice(2)
if (!baseArg || !shotDir) {
  console.error('usage: node tests/browser.mjs <base-url> <screenshot-dir>')
  process.exit(2)
}
// The page sits at the API's root, which may be under a path (MiniStack's
// `/_aws/execute-api/<id>/`, a stage on AWS): routes are resolved below it, never at the origin.
const base = baseArg.endsWith('/') ? baseArg : `${baseArg}/`
const apiUrl = (route) => new URL(route.replace(/^\//, ''), base)
/** The API route of a request URL (`/v1/...`), or null for a URL outside the API. */
const routeOf = (url) => (url.href.startsWith(base) ? `/${url.href.slice(base.length).split(/[?#]/)[0]}` : null)
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium'
const MIB = 1024 * 1024
/** Three 8 MiB parts: 8 + 8 + 4. */
const FILE_SIZE = 20 * MIB
/** Generous bounds on waiting for eventual states; nothing is asserted about speed. */
const WAIT_MS = Number(process.env.WAIT_MS ?? 120_000)

function expect(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`)
}

const PHONE = { width: 390, height: 844 }
const DESKTOP = { width: 1280, height: 800 }

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')
const started = Date.now()
const stamp = (label) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${label}`)

/**
 * Every request a page makes, with when it was sent and when (and how) it was answered, so a
 * failure can show what the page was waiting for: `printNetwork` lists the unanswered ones and
 * the last answered.
 */
const network = []
function recordNetwork(context, tag) {
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1)
  const entries = new Map()
  context.on('request', (request) => {
    const url = new URL(request.url())
    const entry = { tag, sent: seconds(), method: request.method(), url: routeOf(url) ?? url.origin + url.pathname }
    entries.set(request, entry)
    network.push(entry)
  })
  const done = (outcome) => (request) => {
    const entry = entries.get(request)
    if (!entry) return
    entry.answered = seconds()
    entry.outcome = outcome(request)
  }
  context.on('requestfinished', done((r) => 'finished'))
  context.on('requestfailed', done((r) => `failed: ${r.failure()?.errorText}`))
  context.on('response', (response) => {
    const entry = entries.get(response.request())
    if (entry) entry.status = response.status()
  })
}
function printNetwork() {
  const pending = network.filter((e) => e.answered === undefined)
  console.error(`requests never answered (${pending.length}):`)
  for (const e of pending) console.error(`  ${JSON.stringify(e)}`)
  console.error('the last 40 requests:')
  for (const e of network.slice(-40)) console.error(`  ${JSON.stringify(e)}`)
}

await mkdir(shotDir, { recursive: true })
const shots = []
async function screenshot(page, name) {
  const path = resolve(shotDir, name)
  await page.screenshot({ path, fullPage: true })
  shots.push(path)
  console.log(`screenshot: ${path}`)
}

/**
 * Fails on anything the page shows wider than the screen: the document itself (it would
 * scroll sideways), or a visible control or name reaching past either edge. Returns what it
 * measured.
 */
async function checkLayout(page, label) {
  const m = await page.evaluate(() => {
    const width = window.innerWidth
    const outside = []
    for (const node of document.querySelectorAll('button, a, input, select, td, li, h2, .error')) {
      const r = node.getBoundingClientRect()
      // Zero-sized (hidden) nodes and Uppy's invisible file inputs cover nothing.
      if (r.width < 2 || r.height < 2 || getComputedStyle(node).visibility === 'hidden') continue
      if (r.left < -0.5 || r.right > width + 0.5) outside.push(`${node.tagName} ${node.textContent.slice(0, 40)} [${r.left}, ${r.right}]`)
    }
    const names = [...document.querySelectorAll('#files td.name, #trash td.name')]
      .map((n) => n.getBoundingClientRect().width)
      .filter((w) => w > 0)
    return {
      width,
      scrollWidth: document.documentElement.scrollWidth,
      outside,
      narrowestName: names.length ? Math.min(...names) : null,
      rowDisplay: getComputedStyle(document.querySelector('#files tr, #trash tr') ?? document.body).display,
      header: document.querySelector('header').getBoundingClientRect().height,
      // The account line (usage, the trash's bytes: shown nowhere else) cut short.
      accountText: (() => {
        const w = document.getElementById('whoami')
        return `${w.textContent} (${w.scrollWidth}x${w.scrollHeight} in ${w.clientWidth}x${w.clientHeight})`
      })(),
      accountCut: (() => {
        const w = document.getElementById('whoami')
        return w.offsetParent !== null && (w.scrollWidth > w.clientWidth + 1 || w.scrollHeight > w.clientHeight + 1)
      })(),
    }
  })
  expect(!m.accountCut, `${label}: the account line is shown whole: ${m.accountText}`)
  expect(m.scrollWidth <= m.width, `${label}: no horizontal overflow (scrollWidth ${m.scrollWidth} > ${m.width})`)
  expect(m.outside.length === 0, `${label}: everything within the screen: ${JSON.stringify(m.outside)}`)
  // A name column squeezed to a few letters would break names letter by letter.
  if (m.narrowestName !== null) {
    expect(m.narrowestName >= Math.min(200, m.width * 0.5), `${label}: names get room (${m.narrowestName} px)`)
  }
  return { view: label, ...m }
}

/**
 * The folder journey at one screen size, as a new user: every view is screenshotted and,
 * with `checkLayout`, measured.
 */
async function folderJourney(viewport) {
  const tag = `${viewport.width}x${viewport.height}`
  const phone = viewport.width <= 600
  const context = await browser.newContext({ viewport, hasTouch: phone, isMobile: phone })
  recordNetwork(context, tag)
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  const consoleErrors = []
  const expectedStatuses = []
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return
    const expected = expectedStatuses.findIndex((code) => msg.text().includes(`status of ${code}`))
    if (expected >= 0) expectedStatuses.splice(expected, 1)
    else consoleErrors.push(msg.text())
  })
  page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`))
  const measured = []
  const view = async (name) => {
    measured.push(await checkLayout(page, `${tag} ${name}`))
    await screenshot(page, `${tag}-${name}.png`)
  }
  // Every confirmation is accepted; the test checks what it asked.
  const confirmations = []
  page.on('dialog', (d) => {
    confirmations.push(d.message())
    d.accept()
  })

  await page.goto(base)
  const username = `fold_${randomBytes(5).toString('hex')}`
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(`pw-${randomBytes(8).toString('hex')}`)
  await page.getByRole('button', { name: 'Sign up' }).click()
  await page.locator('#whoami', { hasText: username }).waitFor()
  const token = await page.evaluate(() => sessionStorage.getItem('filestore.token'))
  const api = async (method, path, body) => {
    const r = await fetch(apiUrl(path), {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: r.status, body: r.status === 204 ? null : await r.json() }
  }
  const heading = page.locator('#files-title')
  const crumbs = page.getByRole('navigation', { name: 'Folder path', exact: true })
  const alert = page.locator('#error')
  await page.locator('#no-files').waitFor()
  await view('01-empty-root')

  // New folder; the same name again is refused in one line.
  const album = 'Holiday photos from the long summer of 2024'
  await page.getByRole('button', { name: 'New folder' }).click()
  await page.getByLabel('Folder name').fill(album)
  await page.getByRole('button', { name: 'Create', exact: true }).click()
  const albumRow = page.locator('#files tr[data-folder-id]', { hasText: album })
  await albumRow.waitFor()
  await page.getByRole('button', { name: 'New folder' }).click()
  await page.getByLabel('Folder name').fill(album)
  expectedStatuses.push(409)
  await page.getByRole('button', { name: 'Create', exact: true }).click()
  await alert.filter({ hasText: 'is in that folder already' }).waitFor()
  await view('02-name-taken')
  await page.getByRole('button', { name: 'Cancel', exact: true }).click()
  const albumId = await albumRow.getAttribute('data-folder-id')

  // Into the folder with the keyboard: focus its link, press Enter; the focus ring shows.
  await albumRow.getByRole('link', { name: album }).focus()
  await page.keyboard.press('Tab')
  await page.keyboard.press('Shift+Tab')
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle)
  expect(ring !== 'none', `the focused link shows a focus ring (${ring})`)
  await page.keyboard.press('Enter')
  await heading.filter({ hasText: album }).waitFor()
  expect(page.url().endsWith(`#/f/${albumId}`), `the URL names the folder: ${page.url()}`)
  await crumbs.getByRole('link', { name: 'Your files' }).waitFor()
  await page.locator('#upload-target', { hasText: album }).waitFor()

  // Upload into it: a name long enough to wrap on a phone.
  const photoName = `IMG_20240812_183501 sunset over the harbour, taken from the ferry ${randomBytes(2).toString('hex')}.jpg`
  await page.locator('.uppy-Dashboard-input').first().setInputFiles({
    name: photoName,
    mimeType: 'image/jpeg',
    buffer: randomBytes(64 * 1024),
  })
  await page.locator('.uppy-StatusBar-actionBtn--upload').click()
  const photoRow = page.locator('#files tr[data-file-id]', { hasText: photoName })
  await photoRow.waitFor()
  const photoId = await photoRow.getAttribute('data-file-id')
  const stored = await api('GET', `/v1/files/${photoId}`)
  expect(stored.body.parent_id === albumId, `uploaded into the folder shown: ${JSON.stringify(stored.body)}`)
  await page.getByRole('button', { name: 'Done' }).click()

  // A subfolder, renamed.
  await page.getByRole('button', { name: 'New folder' }).click()
  await page.getByLabel('Folder name').fill('Archive')
  await page.getByRole('button', { name: 'Create', exact: true }).click()
  const archiveRow = page.locator('#files tr[data-folder-id]', { hasText: 'Archive' })
  await archiveRow.waitFor()
  const archiveId = await archiveRow.getAttribute('data-folder-id')
  await view('03-folder')
  await archiveRow.getByRole('button', { name: 'Rename Archive' }).click()
  await page.getByLabel('New name for Archive').fill('Old archive')
  await view('04-renaming')
  await page.getByRole('button', { name: 'Save' }).click()
  await page.locator(`#files tr[data-folder-id="${archiveId}"] td.name`, { hasText: 'Old archive' }).waitFor()

  // Rename the photo too.
  const photoNew = `sunset ${randomBytes(2).toString('hex')}.jpg`
  await photoRow.getByRole('button', { name: `Rename ${photoName}` }).click()
  await page.getByLabel(`New name for ${photoName}`).fill(photoNew)
  await page.getByRole('button', { name: 'Save' }).click()
  const photo = page.locator(`#files tr[data-file-id="${photoId}"]`)
  await photo.locator('td.name', { hasText: photoNew }).waitFor()

  // Move the photo into Old archive: the chooser starts here (where it already is, so
  // "Move here" is off), opens the subfolder, moves.
  await photo.getByRole('button', { name: `Move ${photoNew}` }).click()
  const chooser = page.getByRole('dialog')
  await chooser.getByRole('heading', { name: `Move ${photoNew} to…` }).waitFor()
  const moveHere = chooser.locator('#move-confirm')
  await chooser.getByRole('button', { name: 'Open Old archive' }).waitFor()
  expect(await moveHere.isDisabled(), 'no move to where it already is')
  await chooser.getByRole('button', { name: 'Open Old archive' }).click()
  await chooser.locator('#move-crumbs [aria-current]', { hasText: 'Old archive' }).waitFor()
  await view('05-move-dialog')
  await moveHere.click()
  await chooser.waitFor({ state: 'hidden' })
  await photo.waitFor({ state: 'detached' })
  const moved = await api('GET', `/v1/files/${photoId}`)
  expect(moved.body.parent_id === archiveId, `moved into Old archive: ${JSON.stringify(moved.body)}`)

  // Moving Old archive to the root, where that name is taken: one line in the dialog, which
  // stays open; Escape closes it.
  expect((await api('POST', '/v1/folders', { name: 'Old archive' })).status === 201, 'a root folder named Old archive')
  await page.locator(`#files tr[data-folder-id="${archiveId}"]`).getByRole('button', { name: 'Move Old archive' }).click()
  await chooser.getByRole('button', { name: 'Your files' }).click()
  await chooser.locator('#move-crumbs [aria-current]', { hasText: 'Your files' }).waitFor()
  expectedStatuses.push(409)
  await moveHere.click()
  await chooser.locator('#move-error', { hasText: 'is in that folder already' }).waitFor()
  await view('06-move-refused')
  await page.keyboard.press('Escape')
  await chooser.waitFor({ state: 'hidden' })

  // Into Old archive and back up by the breadcrumbs.
  await page.locator(`#files tr[data-folder-id="${archiveId}"]`).getByRole('link', { name: 'Old archive' }).click()
  await heading.filter({ hasText: 'Old archive' }).waitFor()
  await photo.waitFor()
  await crumbs.getByRole('link', { name: album }).waitFor()
  await view('07-subfolder')

  // Delete the photo to the trash, then see it there with its purge date.
  await photo.getByRole('button', { name: `Delete ${photoNew}` }).click()
  await photo.waitFor({ state: 'detached' })
  expect(confirmations.at(-1)?.includes(photoNew), `the page asked before deleting: ${confirmations}`)
  await page.locator('#no-files').waitFor()
  await crumbs.getByRole('link', { name: album }).click()
  await heading.filter({ hasText: album }).waitFor()
  await crumbs.getByRole('link', { name: 'Your files' }).click()
  await heading.filter({ hasText: 'Your files' }).waitFor()
  await page.getByRole('link', { name: 'Trash' }).click()
  await page.locator('#trash-title').waitFor()
  const trashed = page.locator(`#trash tr[data-id="${photoId}"]`)
  await trashed.locator('td.purge', { hasText: 'Purged on' }).waitFor()
  const me = await api('GET', '/v1/me')
  expect(me.body.trash_bytes === 64 * 1024, `the trash holds the photo's bytes: ${JSON.stringify(me.body)}`)
  await view('08-trash')

  // Restore it: back in Old archive.
  await trashed.getByRole('button', { name: `Restore ${photoNew}`, exact: true }).click()
  await trashed.waitFor({ state: 'detached' })
  await page.locator('#no-trash').waitFor()
  const restored = await api('GET', `/v1/files/${photoId}`)
  expect(restored.status === 200 && restored.body.parent_id === archiveId, `restored where it was: ${JSON.stringify(restored)}`)

  // The photo to the trash again, then its folder, Old archive, from the page: restoring the
  // photo alone is refused (parent_gone) in one line; Restore to… puts it in the root.
  expect((await api('DELETE', `/v1/files/${photoId}`)).status === 204, 'deleted again')
  await page.getByRole('link', { name: 'Your files' }).click()
  await heading.filter({ hasText: 'Your files' }).waitFor()
  await albumRow.getByRole('link', { name: album }).click()
  await heading.filter({ hasText: album }).waitFor()
  const archive = page.locator(`#files tr[data-folder-id="${archiveId}"]`)
  await archive.getByRole('button', { name: 'Delete Old archive' }).click()
  await archive.waitFor({ state: 'detached' })
  expect(confirmations.at(-1)?.includes('Old archive" and everything in it'), `the page asked before deleting a folder: ${confirmations}`)
  expect((await api('GET', `/v1/folders/${archiveId}`)).status === 404, 'the deleted folder is a 404')
  await page.getByRole('link', { name: 'Trash' }).click()
  const trashedFolder = page.locator(`#trash tr[data-id="${archiveId}"]`)
  await trashedFolder.waitFor()
  await trashed.waitFor()
  expectedStatuses.push(409)
  await trashed.getByRole('button', { name: `Restore ${photoNew}`, exact: true }).click()
  await alert.filter({ hasText: 'in the trash or gone' }).waitFor()
  await view('09-trash-parent-gone')
  await trashed.getByRole('button', { name: `Restore ${photoNew} to a folder you choose` }).click()
  await chooser.locator('#move-crumbs [aria-current]', { hasText: 'Your files' }).waitFor()
  await chooser.locator('#move-confirm').click()
  await chooser.waitFor({ state: 'hidden' })
  await trashed.waitFor({ state: 'detached' })
  const elsewhere = await api('GET', `/v1/files/${photoId}`)
  expect(elsewhere.status === 200 && elsewhere.body.parent_id === 'root', `restored to the root: ${JSON.stringify(elsewhere)}`)

  // The folder comes back where it was; then the photo goes for good (Purge), and the folder
  // with the rest of the trash (Empty trash).
  await trashedFolder.getByRole('button', { name: 'Restore Old archive', exact: true }).click()
  await trashedFolder.waitFor({ state: 'detached' })
  const back = await api('GET', `/v1/folders/${archiveId}`)
  expect(back.status === 200 && back.body.folder.parent_id === albumId, `the folder is back: ${JSON.stringify(back)}`)
  expect((await api('DELETE', `/v1/files/${photoId}`)).status === 204, 'the photo deleted again')
  await page.getByRole('link', { name: 'Your files' }).click()
  await heading.filter({ hasText: 'Your files' }).waitFor()
  await page.getByRole('link', { name: 'Trash' }).click()
  await trashed.waitFor()
  await trashed.getByRole('button', { name: `Purge ${photoNew}` }).click()
  await trashed.waitFor({ state: 'detached' })
  expect(confirmations.at(-1)?.startsWith('Purge'), `the page asked before purging: ${confirmations}`)
  expect((await api('GET', '/v1/me')).body.trash_bytes === 0, 'purged: nothing left in the trash')
  expect((await api('POST', `/v1/trash/${photoId}/restore`, {})).status === 404, 'a purged file cannot be restored')
  expect((await api('DELETE', `/v1/folders/${albumId}`)).status === 204, 'the album to the trash')
  await page.getByRole('link', { name: 'Your files' }).click()
  await heading.filter({ hasText: 'Your files' }).waitFor()
  await page.getByRole('link', { name: 'Trash' }).click()
  await page.locator(`#trash tr[data-id="${albumId}"]`).waitFor()
  await page.getByRole('button', { name: 'Empty trash' }).click()
  await page.locator('#no-trash').waitFor()
  expect(confirmations.at(-1)?.startsWith('Empty the trash?'), `the page asked before emptying: ${confirmations}`)
  expect((await api('GET', '/v1/trash')).body.entries.length === 0, 'the trash is empty')
  expect((await api('GET', `/v1/folders/${albumId}`)).status === 404, 'the album is gone')
  await view('10-trash-empty')

  await page.getByRole('link', { name: 'Your files' }).click()
  await heading.filter({ hasText: 'Your files' }).waitFor()
  await page.getByRole('button', { name: 'Log out' }).click()
  expect(consoleErrors.length === 0, `${tag}: the page logged no errors: ${JSON.stringify(consoleErrors, null, 2)}`)
  // The account line changes in every view (usage, the trash); the page below it must not move.
  const headers = [...new Set(measured.map((m) => m.header))]
  expect(headers.length === 1, `${tag}: the header keeps its height in every view: ${headers}`)
  await context.close()
  stamp(`${tag}: folders, move, trash, restore, purge`)
  return { viewport: tag, views: measured }
}

/** The page's bound on waiting for an answer (`ANSWER_TIMEOUT_MS` in src/api.js). */
const ANSWER_TIMEOUT_MS = 45_000

/**
 * Slow and lost answers, as a new user on a page whose clock the test moves: a folder listing
 * that never answers ends, after the page's bound, in a one-line error (not a page waiting
 * forever with no sign), and clicking the same breadcrumb again loads it, though the URL
 * already names it; an answer for the folder clicked is shown even when the folder being left
 * is listed again meanwhile (a new folder made in it).
 */
async function slowAnswers() {
  const context = await browser.newContext({ viewport: DESKTOP })
  recordNetwork(context, 'slow')
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  await page.clock.install()
  const consoleErrors = []
  page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`))
  await page.goto(base)
  const username = `slow_${randomBytes(5).toString('hex')}`
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(`pw-${randomBytes(8).toString('hex')}`)
  await page.getByRole('button', { name: 'Sign up' }).click()
  await page.locator('#whoami', { hasText: username }).waitFor()
  const heading = page.locator('#files-title')
  const crumbs = page.getByRole('navigation', { name: 'Folder path', exact: true })
  const alert = page.locator('#error')
  await page.getByRole('button', { name: 'New folder' }).click()
  await page.getByLabel('Folder name').fill('Slow')
  await page.getByRole('button', { name: 'Create', exact: true }).click()
  await page.locator('#files tr[data-folder-id]', { hasText: 'Slow' }).getByRole('link', { name: 'Slow' }).click()
  await heading.filter({ hasText: 'Slow' }).waitFor()

  const isRootListing = (url) => routeOf(url) === '/v1/folders/root/children'
  // The next root listing is held until released; later ones pass.
  const holdRoot = async () => {
    let release
    let sawIt
    let finish
    const seen = new Promise((resolve) => { sawIt = resolve })
    const done = new Promise((resolve) => { finish = resolve })
    await page.route(isRootListing, async (route) => {
      if (release) return route.continue().catch(() => {})
      const released = new Promise((resolve) => { release = resolve })
      sawIt()
      await released
      await route.continue().catch(() => {})
      finish()
    })
    return {
      seen,
      release: async () => {
        release()
        await done
        await page.unroute(isRootListing)
      },
    }
  }
  // The root's listing is held, never answered; the page gives up after its bound.
  let held = null
  let sawHeld
  const seen = new Promise((resolve) => { sawHeld = resolve })
  await page.route(isRootListing, (route) => {
    held = route
    sawHeld()
  })
  await crumbs.getByRole('link', { name: 'Your files' }).click()
  await seen
  await page.clock.fastForward(ANSWER_TIMEOUT_MS + 1000)
  await alert.filter({ hasText: 'did not answer' }).waitFor()
  expect(page.url().endsWith('#/'), `the URL names the folder clicked: ${page.url()}`)
  await screenshot(page, 'slow-1-no-answer.png')
  // The same breadcrumb again, the URL already there: the folder is asked for again.
  await page.unroute(isRootListing)
  await held.abort().catch(() => {})
  await crumbs.getByRole('link', { name: 'Your files' }).click()
  await heading.filter({ hasText: 'Your files' }).waitFor()
  await alert.waitFor({ state: 'hidden' })

  // Into Slow again; while the root's folder answer is held, a new folder is made in Slow
  // (still shown), which lists Slow again: the root still shows once its answer comes.
  await page.locator('#files tr[data-folder-id]', { hasText: 'Slow' }).getByRole('link', { name: 'Slow' }).click()
  await heading.filter({ hasText: 'Slow' }).waitFor()
  await page.getByRole('button', { name: 'New folder' }).click()
  await page.getByLabel('Folder name').fill('Made while leaving')
  let hold = await holdRoot()
  await crumbs.getByRole('link', { name: 'Your files' }).click()
  await hold.seen
  await page.getByRole('button', { name: 'Create', exact: true }).click()
  await page.locator('#notice', { hasText: 'Created folder Made while leaving.' }).waitFor()
  await page.locator('#refresh:not([disabled])').waitFor()
  await hold.release()
  await heading.filter({ hasText: 'Your files' }).waitFor()
  await page.locator('#files tr[data-folder-id]', { hasText: 'Slow' }).waitFor()
  await page.locator('#files-table[aria-busy="false"]').waitFor()
  expect(page.url().endsWith('#/'), `the URL names the folder shown: ${page.url()}`)

  const slowLink = page.locator('#files tr[data-folder-id]', { hasText: 'Slow' }).getByRole('link', { name: 'Slow' })

  // A click on a row while its folder is listed again counts: pressed before the answer,
  // released after it, the row is still the one pressed.
  hold = await holdRoot()
  await page.getByRole('button', { name: 'Refresh' }).click()
  await hold.seen
  const box = await slowLink.boundingBox()
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
  await page.mouse.down()
  await hold.release()
  await page.locator('#files-table[aria-busy="false"]').waitFor()
  await page.mouse.up()
  await heading.filter({ hasText: 'Slow' }).waitFor()

  // Back from the trash, the rows of the folder's last visit are not offered while it is
  // listed again (a click there would meet a row about to be replaced).
  await crumbs.getByRole('link', { name: 'Your files' }).click()
  await slowLink.waitFor()
  await page.getByRole('link', { name: 'Trash' }).click()
  await page.locator('#trash-table[aria-busy="false"]').waitFor()
  hold = await holdRoot()
  await page.getByRole('link', { name: 'Your files' }).click()
  await hold.seen
  const stale = await page.locator('#files tr').count()
  expect(stale === 0, `no rows left from the last visit while the folder is listed (${stale})`)
  await hold.release()
  await slowLink.waitFor()
  expect(consoleErrors.length === 0, `slow answers: no uncaught errors: ${JSON.stringify(consoleErrors)}`)
  await context.close()
  stamp('slow answers: a bounded wait with a message, the same click again, no answer dropped')
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
  const context = await browser.newContext({ acceptDownloads: true, viewport: DESKTOP })
  recordNetwork(context, 'files')
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
    const route = routeOf(url)
    if (request.method() === 'PUT' && url.searchParams.has('partNumber')) {
      partPuts.push({
        part: Number(url.searchParams.get('partNumber')),
        status: response.status(),
        api: route !== null,
        object: url.pathname,
      })
    }
    if (request.method() === 'GET' && route?.startsWith('/v1/uploads/')) {
      statusReads.push(route)
    }
    if (request.method() === 'POST' && /^\/v1\/fast-upload\/[^/]+\/proof$/.test(route)) {
      proofs.push(await response.json().catch(() => null))
    }
    if (request.method() === 'POST' && route === '/v1/uploads') {
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
  expect(partPuts.every((p) => !p.api), 'parts went to S3, not through the API')
  await row.locator('td', { hasText: '20.0 MiB' }).waitFor()

  // The transfer function verifies the bytes in the background (its own tests cover that);
  // the list shows whichever of the file's two states the server reports (unverified in the
  // hot store, or verified in the cold one), and Refresh reloads it.
  await page.getByRole('button', { name: 'Refresh' }).click()
  await page.locator('#files-table[aria-busy="false"]').waitFor()
  const status = await row.locator('td').nth(2).textContent()
  expect(/^(Checking · hot|Verified · cold) storage/.test(status), `status shows verification and tier (unverified hot, or verified cold): ${status}`)
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
    const r = await fetch(apiUrl(path), { method, headers: { Authorization: `Bearer ${storage.token}` } })
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
  expect(shareUrl.startsWith(`${base}v1/s/`), `the link is absolute on the API: ${shareUrl}`)
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
  await context.close()

  await slowAnswers()
  const layouts = []
  for (const viewport of [PHONE, DESKTOP]) layouts.push(await folderJourney(viewport))

  console.log(JSON.stringify({
    ok: true,
    seconds: (Date.now() - started) / 1000,
    size: FILE_SIZE,
    parts: partNumbers.length,
    sha256: downloadedSha,
    layouts,
    screenshots: shots,
  }))
} catch (e) {
  failed = true
  console.error(e.stack ?? String(e))
  printNetwork()
  for (const page of browser.contexts().flatMap((c) => c.pages())) {
    await screenshot(page, 'failure.png').catch(() => {})
  }
} finally {
  await browser.close()
  await rm(work, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)
