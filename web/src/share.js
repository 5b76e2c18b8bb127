// Share links of one file, in a dialog: create one (lifetime, optional download limit), shown
// once with a Copy button; list the live ones with their downloads; revoke.

import { api } from './api.js'
import { $, button, el, formatTime, messageOf } from './dom.js'

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

export function openShares(file) {
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

/** Closes the dialog, forgetting any link it shows (at logout). */
export function closeShares() {
  if (share.dialog.open) share.dialog.close()
}
