// The page: log in or sign up, upload with the Dashboard, and list, download, rename,
// share and delete files. User data is only ever put in the page as text, never as HTML.

import { api, ApiError, session, whenUnauthorized } from './api.js'
import { createUploader } from './uploader.js'

const $ = (id) => document.getElementById(id)

const view = {
  login: $('login-view'),
  files: $('files-view'),
  account: $('account'),
  whoami: $('whoami'),
  error: $('error'),
  notice: $('notice'),
  rows: $('files'),
  noFiles: $('no-files'),
  more: $('more'),
}

let uppy = null
let nextCursor = null
/** Rows with an open rename form, kept as they are when the list is refreshed. */
const editing = new Map()

function showError(message) {
  view.error.textContent = message
  view.error.hidden = !message
}

function notify(message) {
  view.notice.textContent = message
}

function messageOf(error) {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error)
}

/** Runs `action`, showing its failure; resolves to undefined on failure. */
async function attempt(action) {
  try {
    showError('')
    return await action()
  } catch (e) {
    showError(messageOf(e))
    return undefined
  }
}

// Sizes in binary units, as the server counts part sizes and quotas.
function formatSize(bytes) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return unit === 0 ? `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}` : `${value.toFixed(1)} ${units[unit]}`
}

function formatTime(rfc3339) {
  const date = new Date(rfc3339)
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString()
}

// ---- session ----

function showLogin(message) {
  session.token = null
  if (uppy) {
    uppy.destroy()
    uppy = null
  }
  view.rows.replaceChildren()
  editing.clear()
  if (share.dialog.open) share.dialog.close()
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
      onUploaded: (file) => {
        notify(`Uploaded ${file.name}.`)
        refreshFiles()
      },
      onError: showError,
    })
  }
  await Promise.all([refreshAccount(), refreshFiles()])
}

async function refreshAccount() {
  const me = await attempt(() => api.me())
  if (me) {
    view.whoami.textContent = `${me.username} · ${formatSize(me.used_bytes)} of ${formatSize(me.quota_bytes)} used`
  }
}

whenUnauthorized(() => showLogin('Your session has ended. Please log in again.'))

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

// ---- files ----

async function refreshFiles() {
  const refresh = $('refresh')
  refresh.disabled = true
  $('files-table').setAttribute('aria-busy', 'true')
  const page = await attempt(() => api.listFiles())
  refresh.disabled = false
  $('files-table').setAttribute('aria-busy', 'false')
  if (!page) return
  view.rows.replaceChildren(...page.files.map((file) => editing.get(file.file_id) ?? fileRow(file)))
  setCursor(page.next_cursor)
  refreshAccount()
}

function setCursor(cursor) {
  nextCursor = cursor ?? null
  view.more.hidden = !nextCursor
  view.noFiles.hidden = view.rows.children.length > 0
}

$('refresh').addEventListener('click', refreshFiles)
$('more').addEventListener('click', async () => {
  const page = await attempt(() => api.listFiles(nextCursor))
  if (!page) return
  view.rows.append(...page.files.map(fileRow))
  setCursor(page.next_cursor)
})

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag)
  Object.assign(node, props)
  node.append(...children)
  return node
}

function button(label, accessibleName, onClick) {
  const b = el('button', { type: 'button', textContent: label })
  b.setAttribute('aria-label', accessibleName)
  b.addEventListener('click', onClick)
  return b
}

function statusText(file) {
  const state = file.verified ? 'Verified' : 'Checking'
  const tier = file.tier === 'cold' ? 'cold storage' : 'hot storage'
  return `${state} · ${tier}`
}

function fileRow(file) {
  const row = el('tr')
  row.dataset.fileId = file.file_id
  fillRow(row, file)
  return row
}

function fillRow(row, file) {
  editing.delete(file.file_id)
  const name = el('td', { className: 'name', textContent: file.name })
  const status = el('td', { className: file.verified ? 'verified' : 'pending' }, statusText(file))
  if (file.sha256) status.title = `SHA-256 ${file.sha256}`
  if (file.declared_sha256) {
    status.append(el('div', { className: 'warning', textContent: 'Declared hash differs' }))
  }
  const actions = el(
    'td',
    { className: 'row-actions' },
    button('Download', `Download ${file.name}`, () => download(file)),
    button('Rename', `Rename ${file.name}`, () => startRename(row, file)),
    button('Share', `Share ${file.name}`, () => openShares(file)),
    button('Delete', `Delete ${file.name}`, () => remove(row, file)),
  )
  row.replaceChildren(
    name,
    el('td', { className: 'num', textContent: formatSize(file.size), title: `${file.size} bytes` }),
    status,
    el('td', { textContent: formatTime(file.created_at) }),
    actions,
  )
}

async function download(file) {
  const link = await attempt(() => api.downloadUrl(file.file_id))
  // The presigned URL answers with Content-Disposition: attachment, so the page stays.
  if (link) window.location.assign(link.url)
}

function startRename(row, file) {
  const input = el('input', { id: `rename-${file.file_id}`, value: file.name, required: true, maxLength: 255 })
  const label = el('label', { htmlFor: input.id, className: 'visually-hidden', textContent: `New name for ${file.name}` })
  const form = el(
    'form',
    { className: 'rename' },
    label,
    input,
    el('button', { type: 'submit', textContent: 'Save', className: 'primary' }),
    button('Cancel', 'Cancel renaming', () => fillRow(row, file)),
  )
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const renamed = await attempt(() => api.renameFile(file.file_id, input.value))
    if (renamed) {
      fillRow(row, renamed)
      notify(`Renamed to ${renamed.name}.`)
    }
  })
  row.cells[0].replaceChildren(form)
  editing.set(file.file_id, row)
  input.focus()
  input.select()
}

async function remove(row, file) {
  if (!window.confirm(`Move "${file.name}" to the trash? It can be restored until it is purged.`)) return
  const done = await attempt(async () => {
    await api.deleteFile(file.file_id)
    return true
  })
  if (done) {
    editing.delete(file.file_id)
    row.remove()
    view.noFiles.hidden = view.rows.children.length > 0
    notify(`Deleted ${file.name}.`)
    refreshAccount()
  }
}

// ---- share links ----

const share = {
  dialog: $('share-dialog'),
  title: $('share-title'),
  error: $('share-error'),
  notice: $('share-notice'),
  form: $('share-form'),
  expires: $('share-expires'),
  limit: $('share-limit'),
  created: $('share-created'),
  url: $('share-url'),
  rows: $('shares'),
  none: $('no-shares'),
}
/** The file whose links the dialog shows; answers for another file are dropped. */
let sharing = null

/** Like `attempt`, but the failure shows in the dialog, which makes the page inert. */
async function attemptInDialog(action) {
  try {
    share.error.hidden = true
    return await action()
  } catch (e) {
    share.error.textContent = messageOf(e)
    share.error.hidden = false
    return undefined
  }
}

function openShares(file) {
  sharing = file
  share.title.textContent = `Share links for ${file.name}`
  share.error.hidden = true
  share.notice.textContent = ''
  forgetCreatedLink()
  share.limit.value = ''
  share.rows.replaceChildren()
  share.none.hidden = true
  share.dialog.showModal()
  refreshShares(file)
}

/** A new link's token is shown once: it leaves the page when the dialog closes. */
function forgetCreatedLink() {
  share.url.value = ''
  share.created.hidden = true
}

async function refreshShares(file) {
  const list = await attemptInDialog(() => api.listShares(file.file_id))
  if (!list || sharing !== file) return
  share.rows.replaceChildren(...list.shares.map((s) => shareRow(file, s)))
  share.none.hidden = list.shares.length > 0
}

function shareRow(file, link) {
  const expires = formatTime(link.expires_at)
  const limit = link.max_downloads == null ? 'no limit' : String(link.max_downloads)
  const row = el(
    'tr',
    {},
    el('td', { textContent: expires }),
    el('td', { className: 'num', textContent: `${link.downloads} of ${limit}` }),
    el(
      'td',
      { className: 'row-actions' },
      button('Revoke', `Revoke the link expiring ${expires}`, () => revokeShare(file, row, link)),
    ),
  )
  row.dataset.shareId = link.share_id
  return row
}

async function revokeShare(file, row, link) {
  if (!window.confirm('Revoke this link? Whoever has it can no longer download the file.')) return
  const done = await attemptInDialog(async () => {
    await api.revokeShare(link.share_id)
    return true
  })
  if (done && sharing === file) {
    row.remove()
    share.none.hidden = share.rows.children.length > 0
    share.notice.textContent = 'Link revoked.'
  }
}

share.form.addEventListener('submit', async (event) => {
  event.preventDefault()
  const file = sharing
  if (!file) return
  const limit = share.limit.value.trim()
  const submit = share.form.querySelector('button[type="submit"]')
  submit.disabled = true
  const created = await attemptInDialog(() =>
    api.createShare(file.file_id, Number(share.expires.value), limit === '' ? undefined : Number(limit)),
  )
  submit.disabled = false
  if (!created || sharing !== file) return
  share.url.value = created.url
  share.created.hidden = false
  share.notice.textContent = 'Link created.'
  share.url.focus()
  share.url.select()
  refreshShares(file)
})

$('share-copy').addEventListener('click', async () => {
  share.url.select()
  try {
    await navigator.clipboard.writeText(share.url.value)
    share.notice.textContent = 'Link copied.'
  } catch {
    // No clipboard API (an insecure origin, or permission refused): the selection remains.
    share.notice.textContent = document.execCommand('copy')
      ? 'Link copied.'
      : 'Copy the selected link with Ctrl+C (⌘C on a Mac).'
  }
})

$('share-close').addEventListener('click', () => share.dialog.close())
share.dialog.addEventListener('close', () => {
  sharing = null
  forgetCreatedLink()
})

// ---- start ----

if (session.token) {
  showFiles()
} else {
  showLogin()
}
