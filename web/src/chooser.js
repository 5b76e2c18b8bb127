// The folder chooser: a dialog that walks the folder tree (breadcrumbs up, a folder's
// subfolders down) to pick where something goes, for a move or a restore elsewhere. Children
// come folders first, so a listing stops at its first file. A refusal (name_taken, cycle,
// parent_gone) shows as one line in the dialog, which stays open to choose again.

import { api } from './api.js'
import { $, button, el, folderName, icon, messageOf, renderCrumbs } from './dom.js'

const ui = {
  dialog: $('move-dialog'),
  title: $('move-title'),
  error: $('move-error'),
  crumbs: $('move-crumbs'),
  list: $('move-folders'),
  none: $('move-none'),
  more: $('move-more'),
  confirm: $('move-confirm'),
}

/** What the open dialog is for; see `chooseFolder`. */
let task = null
/** The folder shown, `{folder, ancestors}`, and the cursor of its next page of children. */
let shown = null
let cursor = null
/** Bumped on every listing, so an answer for a folder no longer shown is dropped. */
let generation = 0

/**
 * Opens the dialog at folder `start`. `exclude` (a folder id) is not offered, nor anything
 * below it: a folder cannot go into itself. The confirm button (`confirmLabel`) is disabled
 * in folder `unchanged`, where the item already is. `onChoose(folderId, name)` does the work;
 * when it throws, its message shows and the dialog stays open.
 */
export function chooseFolder({ title, confirmLabel, start, exclude, unchanged, onChoose }) {
  task = { exclude, unchanged, onChoose }
  ui.title.textContent = title
  ui.confirm.textContent = confirmLabel
  fail(null)
  ui.list.replaceChildren()
  ui.crumbs.replaceChildren()
  ui.dialog.showModal()
  show(start)
}

function fail(error) {
  ui.error.textContent = error ? messageOf(error) : ''
  ui.error.hidden = !error
}

async function show(folderId) {
  const mine = ++generation
  ui.confirm.disabled = true
  ui.more.hidden = true
  let info
  let page
  try {
    ;[info, page] = await Promise.all([api.folder(folderId), api.children(folderId)])
  } catch (e) {
    if (mine === generation) fail(e)
    return
  }
  if (mine !== generation || !task) return
  fail(null)
  shown = info
  renderCrumbs(ui.crumbs, info, (id, name) => button(name, null, () => show(id)))
  ui.list.replaceChildren()
  append(page)
  ui.confirm.disabled = folderId === task.unchanged
  ui.confirm.setAttribute('aria-label', `${ui.confirm.textContent}: ${folderName(info.folder)}`)
}

function append(page) {
  const folders = page.entries.filter((e) => e.type === 'folder' && e.folder_id !== task.exclude)
  ui.list.append(
    ...folders.map((f) => {
      const open = button('', `Open ${f.name}`, () => show(f.folder_id))
      open.append(icon('folder'), el('span', { className: 'entry-name', textContent: f.name }))
      return el('li', {}, open)
    }),
  )
  const sawFile = page.entries.some((e) => e.type === 'file')
  cursor = sawFile ? null : page.next_cursor
  ui.more.hidden = !cursor
  ui.none.hidden = ui.list.children.length > 0
}

ui.more.addEventListener('click', async () => {
  const mine = generation
  const from = shown.folder.folder_id
  try {
    const page = await api.children(from, cursor)
    if (mine === generation) append(page)
  } catch (e) {
    if (mine === generation) fail(e)
  }
})

ui.confirm.addEventListener('click', async () => {
  const target = shown.folder
  const mine = generation
  ui.confirm.disabled = true
  try {
    await task.onChoose(target.folder_id, folderName(target))
    if (mine === generation) ui.dialog.close()
  } catch (e) {
    if (mine !== generation) return
    fail(e)
    ui.confirm.disabled = false
  }
})

$('move-cancel').addEventListener('click', () => ui.dialog.close())
ui.dialog.addEventListener('close', () => {
  task = null
  generation += 1
})
