// The trash view: what was deleted, newest first, with the date the server purges each item;
// restore (back where it was, or to a folder chosen when that one is gone), purge one, or
// empty the whole trash.

import { api } from './api.js'
import { chooseFolder } from './chooser.js'
import { $, attempt, button, el, formatDate, formatSize, formatTime, icon, notify } from './dom.js'

const ui = {
  table: $('trash-table'),
  rows: $('trash'),
  none: $('no-trash'),
  more: $('trash-more'),
  empty: $('empty-trash'),
}

let cursor = null
let generation = 0
/** Called after anything that changes the account's usage (a purge frees bytes). */
let changed = () => {}

export function whenTrashChanges(callback) {
  changed = callback
}

export function clearTrash() {
  generation += 1
  ui.rows.replaceChildren()
}

/** Loads the first page of the trash. */
export async function showTrash() {
  const mine = ++generation
  ui.table.setAttribute('aria-busy', 'true')
  const page = await attempt(() => api.trash())
  if (mine !== generation) return
  ui.table.setAttribute('aria-busy', 'false')
  if (!page) return
  ui.rows.replaceChildren(...page.entries.map(trashRow))
  setCursor(page.next_cursor)
}

function setCursor(next) {
  cursor = next ?? null
  ui.more.hidden = !cursor
  updateEmpty()
}

function updateEmpty() {
  const none = ui.rows.children.length === 0
  ui.none.hidden = !none
  ui.empty.disabled = none
}

ui.more.addEventListener('click', async () => {
  const mine = generation
  const page = await attempt(() => api.trash(cursor))
  if (!page || mine !== generation) return
  ui.rows.append(...page.entries.map(trashRow))
  setCursor(page.next_cursor)
})

function trashRow(item) {
  const row = el('tr')
  row.dataset.id = item.id
  const name = el('td', { className: 'name' }, icon(item.type), el('span', { className: 'entry-name', textContent: item.name }))
  const purgeOn = el('td', { className: 'purge', title: formatTime(item.purge_at) }, `Purged on ${formatDate(item.purge_at)}`)
  row.append(
    name,
    el('td', { className: 'num size', textContent: formatSize(item.size), title: `${item.size} bytes` }),
    el('td', { className: 'created', textContent: `Deleted ${formatTime(item.trashed_at)}` }),
    purgeOn,
    el(
      'td',
      { className: 'row-actions' },
      el(
        'div',
        { className: 'buttons' },
        button('Restore', `Restore ${item.name}`, () => restore(row, item)),
        button('Restore to…', `Restore ${item.name} to a folder you choose`, () => restoreTo(row, item)),
        button('Purge', `Purge ${item.name}`, () => purge(row, item)),
      ),
    ),
  )
  return row
}

function gone(row) {
  row.remove()
  updateEmpty()
  changed()
}

async function restore(row, item) {
  const entry = await attempt(() => api.restore(item.id))
  if (!entry) return
  gone(row)
  notify(`Restored ${entry.name}.`)
}

function restoreTo(row, item) {
  chooseFolder({
    title: `Restore ${item.name} to…`,
    confirmLabel: 'Restore here',
    start: 'root',
    exclude: item.type === 'folder' ? item.id : undefined,
    onChoose: async (folderId, folderName) => {
      const entry = await api.restore(item.id, folderId)
      gone(row)
      notify(`Restored ${entry.name} to ${folderName}.`)
    },
  })
}

async function purge(row, item) {
  if (!window.confirm(`Purge "${item.name}" now? It is deleted for good.`)) return
  const done = await attempt(async () => {
    await api.purge(item.id)
    return true
  })
  if (!done) return
  gone(row)
  notify(`Purged ${item.name}.`)
}

ui.empty.addEventListener('click', async () => {
  if (!window.confirm('Empty the trash? Everything in it is deleted for good.')) return
  const done = await attempt(async () => {
    await api.emptyTrash()
    return true
  })
  if (!done) return
  generation += 1
  ui.rows.replaceChildren()
  setCursor(null)
  changed()
  notify('The trash is empty.')
})
