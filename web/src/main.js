// The page: log in or sign up; browse folders (breadcrumbs, new folder, rename, move, delete
// to the trash), upload into the folder shown, download and share files; the trash. Where
// the page is lives in the URL's fragment (`#/`, `#/f/<folder id>`, `#/trash`), so Back,
// reload and bookmarks work. User data is only ever put in the page as text, never as HTML.

import { api, session, whenUnauthorized } from './api.js'
import { chooseFolder } from './chooser.js'
import {
  $,
  attempt,
  button,
  el,
  folderName,
  formatSize,
  formatTime,
  icon,
  keepChildren,
  notify,
  renderCrumbs,
  showError,
} from './dom.js'
import { closeShares, openShares } from './share.js'
import { clearTrash, showTrash, whenTrashChanges } from './trash.js'
import { createUploader } from './uploader.js'

const view = {
  login: $('login-view'),
  files: $('files-view'),
  upload: $('upload-card'),
  uploadTarget: $('upload-target'),
  browse: $('browse-card'),
  trash: $('trash-card'),
  account: $('account'),
  whoami: $('whoami'),
  title: $('files-title'),
  crumbs: $('crumbs'),
  table: $('files-table'),
  rows: $('files'),
  noFiles: $('no-files'),
  more: $('more'),
  newFolder: $('new-folder-form'),
  newFolderName: $('new-folder-name'),
}

let uppy = null
/** The folder shown, `{folder, ancestors}` as `GET /v1/folders/{id}` answers. */
let here = { folder: { folder_id: 'root', name: '', parent_id: null }, ancestors: [] }
let nextCursor = null
/** Bumped on every listing, so an answer for a folder no longer shown is dropped. */
let generation = 0
/** Rows with an open rename form, kept as they are when the folder is listed again. */
const editing = new Map()

// ---- where the page is ----

function folderHref(folderId) {
  return folderId === 'root' ? '#/' : `#/f/${encodeURIComponent(folderId)}`
}

/** `{trash: true}` or `{folderId}` from the URL's fragment. */
function location() {
  const hash = window.location.hash
  if (hash === '#/trash') return { trash: true }
  const folder = /^#\/f\/([0-9a-f-]+)$/.exec(hash)
  return { folderId: folder ? folder[1] : 'root' }
}

async function render({ focus = false } = {}) {
  const where = location()
  // A view shown again starts empty until its listing answers: rows left from its last visit
  // may no longer be what the server holds, and a click on one would land on a row about to
  // be replaced (and be lost with it).
  if (where.trash && view.trash.hidden) clearTrash()
  if (!where.trash && view.browse.hidden) clearFolder()
  view.upload.hidden = !!where.trash
  view.browse.hidden = !!where.trash
  view.trash.hidden = !where.trash
  if (where.trash) {
    document.title = 'Trash · filestore'
    await showTrash()
    if (focus) $('trash-title').focus()
  } else {
    await openFolder(where.folderId)
    if (focus) view.title.focus()
  }
}

window.addEventListener('hashchange', () => {
  if (session.token) render({ focus: true })
})

// A link to where the URL already is changes no hash, so no `hashchange` would follow: after
// a load that failed or has not answered yet, the breadcrumb to the folder being opened would
// do nothing. Such a click loads that place again.
document.addEventListener('click', (event) => {
  const link = event.target.closest?.('a[href^="#/"]')
  if (!link || !session.token || event.defaultPrevented || event.button !== 0) return
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
  if (link.getAttribute('href') !== window.location.hash) return
  event.preventDefault()
  render({ focus: true })
})

// ---- session ----

function showLogin(message) {
  session.token = null
  if (uppy) {
    uppy.destroy()
    uppy = null
  }
  generation += 1
  clearRows()
  editing.clear()
  clearTrash()
  closeShares()
  $('move-dialog').close()
  view.files.hidden = true
  view.account.hidden = true
  view.login.hidden = false
  showError(message ?? '')
  $('password').value = ''
  $('username').focus()
}

async function showFiles() {
  view.login.hidden = true
  view.files.hidden = false
  view.account.hidden = false
  if (!uppy) {
    uppy = createUploader($('uploader'), {
      folderId: () => here.folder.folder_id,
      onUploaded: (file) => {
        notify(`Uploaded ${file.name}.`)
        if ((file.parent_id ?? 'root') === location().folderId) {
          refreshFolder()
        } else {
          refreshAccount()
        }
      },
      onError: showError,
    })
  }
  await Promise.all([refreshAccount(), render()])
}

async function refreshAccount() {
  const me = await attempt(() => api.me())
  if (me) {
    const trash = me.trash_bytes ? ` (${formatSize(me.trash_bytes)} in the trash)` : ''
    view.whoami.textContent = `${me.username} · ${formatSize(me.used_bytes)} of ${formatSize(me.quota_bytes)} used${trash}`
    view.whoami.title = view.whoami.textContent
  }
}

whenUnauthorized(() => showLogin('Your session has ended. Please log in again.'))
whenTrashChanges(refreshAccount)

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const action = event.submitter?.value ?? 'login'
  const username = $('username').value.trim()
  const password = $('password').value
  const buttons = event.currentTarget.querySelectorAll('button')
  buttons.forEach((b) => { b.disabled = true })
  const ok = await attempt(async () => {
    if (action === 'signup') await api.signup(username, password)
    const { token } = await api.login(username, password)
    session.token = token
    return true
  })
  buttons.forEach((b) => { b.disabled = false })
  if (ok) {
    $('password').value = ''
    notify(action === 'signup' ? `Welcome, ${username}.` : '')
    await showFiles()
  }
})

$('logout').addEventListener('click', () => {
  showLogin()
  notify('Logged out.')
})

// ---- a folder ----

function clearFolder() {
  clearRows()
  view.crumbs.replaceChildren()
  view.more.hidden = true
  view.noFiles.hidden = true
  editing.clear()
}

/**
 * Lists folder `folderId` from its first page, with its breadcrumbs. Rows and breadcrumbs that
 * did not change stay the same elements, so a click on one while the listing answers still
 * counts.
 */
async function openFolder(folderId) {
  const mine = ++generation
  const refresh = $('refresh')
  refresh.disabled = true
  view.table.setAttribute('aria-busy', 'true')
  const answer = await attempt(() => Promise.all([api.folder(folderId), api.children(folderId)]))
  if (mine !== generation) return
  refresh.disabled = false
  view.table.setAttribute('aria-busy', 'false')
  if (!answer) return
  const [info, page] = answer
  if (info.folder.folder_id !== here.folder.folder_id) {
    editing.clear()
    view.newFolder.hidden = true
  }
  here = info
  const name = folderName(info.folder)
  document.title = `${name} · filestore`
  view.title.textContent = name
  view.uploadTarget.textContent = name
  renderCrumbs(view.crumbs, info, (id, crumb) => el('a', { href: folderHref(id), textContent: crumb }))
  showRows(page.entries.map((entry) => editing.get(idOf(entry)) ?? shownRow(entry) ?? entryRow(entry)))
  setCursor(page.next_cursor)
  refreshAccount()
}

/**
 * Lists the folder again: the one the URL names, which is the one shown or the one being
 * opened. Reloading the one shown instead would drop the answer for a folder just clicked (a
 * newer listing wins) and leave the page on the old folder under the new URL.
 */
function refreshFolder() {
  const where = location()
  return where.trash ? refreshAccount() : openFolder(where.folderId)
}

function setCursor(cursor) {
  nextCursor = cursor ?? null
  view.more.hidden = !nextCursor
  updateEmpty()
}

function updateEmpty() {
  view.noFiles.hidden = view.rows.children.length > 0
}

$('refresh').addEventListener('click', refreshFolder)
view.more.addEventListener('click', async () => {
  const mine = generation
  const page = await attempt(() => api.children(here.folder.folder_id, nextCursor))
  if (!page || mine !== generation) return
  appendRows(page.entries.map(entryRow))
  setCursor(page.next_cursor)
})

// New folder: a small form under the heading.
$('new-folder').addEventListener('click', () => {
  view.newFolder.hidden = false
  view.newFolderName.value = ''
  view.newFolderName.focus()
})
$('new-folder-cancel').addEventListener('click', () => {
  view.newFolder.hidden = true
  $('new-folder').focus()
})
view.newFolder.addEventListener('submit', async (event) => {
  event.preventDefault()
  const parent = here.folder.folder_id
  const folder = await attempt(() => api.createFolder(view.newFolderName.value, parent))
  if (!folder) return
  view.newFolder.hidden = true
  notify(`Created folder ${folder.name}.`)
  if (parent === here.folder.folder_id) await refreshFolder()
  rowOf({ type: 'folder', ...folder })?.querySelector('a')?.focus()
})

// ---- entries ----

function idOf(entry) {
  return entry.type === 'folder' ? entry.folder_id : entry.file_id
}

/**
 * The row shown for each entry, by `type:id` (the first in the table if a listing ever named
 * one twice), kept in step with the table's rows, so finding an entry's row costs the same
 * however many are shown.
 */
const shownRows = new Map()

function keyOf(entry) {
  return `${entry.type}:${idOf(entry)}`
}

function rowKey(row) {
  return row.dataset.folderId === undefined ? `file:${row.dataset.fileId}` : `folder:${row.dataset.folderId}`
}

/** Notes `row` as shown, unless a row earlier in the table shows the same entry. */
function noteRow(row) {
  const key = rowKey(row)
  if (!shownRows.has(key)) shownRows.set(key, row)
}

/** Makes the table's rows `rows` (see `keepChildren`). */
function showRows(rows) {
  keepChildren(view.rows, rows)
  shownRows.clear()
  for (const row of view.rows.children) noteRow(row)
}

function appendRows(rows) {
  view.rows.append(...rows)
  rows.forEach(noteRow)
}

function removeRow(row) {
  row.remove()
  const key = rowKey(row)
  if (shownRows.get(key) !== row) return
  shownRows.delete(key)
  // Only a listing that named the entry twice has another row for it.
  const next = [...view.rows.children].find((other) => rowKey(other) === key)
  if (next) shownRows.set(key, next)
}

function clearRows() {
  view.rows.replaceChildren()
  shownRows.clear()
}

function rowOf(entry) {
  return shownRows.get(keyOf(entry))
}

/** What each row shows, to tell whether a listing changed it. */
const shownEntries = new WeakMap()

/** The row already showing exactly `entry`, if any. */
function shownRow(entry) {
  const row = rowOf(entry)
  return row && shownEntries.get(row) === JSON.stringify(entry) ? row : undefined
}

function entryRow(entry) {
  const row = el('tr')
  if (entry.type === 'folder') row.dataset.folderId = entry.folder_id
  else row.dataset.fileId = entry.file_id
  fillRow(row, entry)
  return row
}

function statusText(file) {
  const state = file.verified ? 'Verified' : 'Checking'
  const tier = file.tier === 'cold' ? 'cold storage' : 'hot storage'
  return `${state} · ${tier}`
}

function fillRow(row, entry) {
  editing.delete(idOf(entry))
  shownEntries.set(row, JSON.stringify(entry))
  const isFolder = entry.type === 'folder'
  const name = el('td', { className: 'name' })
  const label = el('span', { className: 'entry-name', textContent: entry.name })
  if (isFolder) {
    name.append(el('a', { href: folderHref(entry.folder_id) }, icon('folder'), label))
  } else {
    name.append(icon('file'), label)
  }
  let size
  let status
  if (isFolder) {
    size = el('td', { className: 'num size empty' })
    status = el('td', { className: 'status', textContent: 'Folder' })
  } else {
    size = el('td', { className: 'num size', textContent: formatSize(entry.size), title: `${entry.size} bytes` })
    status = el('td', { className: `status ${entry.verified ? 'verified' : 'pending'}` }, statusText(entry))
    if (entry.sha256) status.title = `SHA-256 ${entry.sha256}`
    if (entry.declared_sha256) {
      status.append(el('div', { className: 'warning', textContent: 'Declared hash differs' }))
    }
  }
  const buttons = el('div', { className: 'buttons' })
  if (!isFolder) buttons.append(button('Download', `Download ${entry.name}`, () => download(entry)))
  buttons.append(
    button('Rename', `Rename ${entry.name}`, () => startRename(row, entry)),
    button('Move', `Move ${entry.name}`, () => move(row, entry)),
  )
  if (!isFolder) buttons.append(button('Share', `Share ${entry.name}`, () => openShares(entry)))
  buttons.append(button('Delete', `Delete ${entry.name}`, () => remove(row, entry)))
  row.replaceChildren(
    name,
    size,
    status,
    el('td', { className: 'created', textContent: formatTime(entry.created_at) }),
    el('td', { className: 'row-actions' }, buttons),
  )
}

function patch(entry, change) {
  return entry.type === 'folder'
    ? api.patchFolder(entry.folder_id, change)
    : api.patchFile(entry.file_id, change)
}

async function download(file) {
  const link = await attempt(() => api.downloadUrl(file.file_id))
  // The presigned URL answers with Content-Disposition: attachment, so the page stays.
  if (link) window.location.assign(link.url)
}

function startRename(row, entry) {
  const id = idOf(entry)
  const input = el('input', { id: `rename-${id}`, value: entry.name, required: true, maxLength: 255 })
  const label = el('label', { htmlFor: input.id, className: 'visually-hidden', textContent: `New name for ${entry.name}` })
  const form = el(
    'form',
    { className: 'rename' },
    label,
    input,
    el('button', { type: 'submit', textContent: 'Save', className: 'primary' }),
    button('Cancel', 'Cancel renaming', () => fillRow(row, entry)),
  )
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const renamed = await attempt(() => patch(entry, { name: input.value }))
    if (renamed) {
      fillRow(row, { type: entry.type, ...renamed })
      notify(`Renamed to ${renamed.name}.`)
    }
  })
  row.cells[0].replaceChildren(form)
  editing.set(id, row)
  input.focus()
  input.select()
}

function move(row, entry) {
  const isFolder = entry.type === 'folder'
  chooseFolder({
    title: `Move ${entry.name} to…`,
    confirmLabel: 'Move here',
    start: here.folder.folder_id,
    exclude: isFolder ? entry.folder_id : undefined,
    unchanged: entry.parent_id ?? 'root',
    onChoose: async (folderId, folderName) => {
      const moved = await patch(entry, { parent_id: folderId })
      notify(`Moved ${moved.name} to ${folderName}.`)
      if ((moved.parent_id ?? 'root') !== here.folder.folder_id) {
        editing.delete(idOf(entry))
        removeRow(row)
        updateEmpty()
      }
    },
  })
}

async function remove(row, entry) {
  const isFolder = entry.type === 'folder'
  const what = isFolder ? `the folder "${entry.name}" and everything in it` : `"${entry.name}"`
  if (!window.confirm(`Move ${what} to the trash? It can be restored until it is purged.`)) return
  const done = await attempt(async () => {
    await (isFolder ? api.deleteFolder(entry.folder_id) : api.deleteFile(entry.file_id))
    return true
  })
  if (done) {
    editing.delete(idOf(entry))
    removeRow(row)
    updateEmpty()
    notify(`Deleted ${entry.name}.`)
    refreshAccount()
  }
}

// ---- start ----

if (session.token) {
  showFiles()
} else {
  showLogin()
}
