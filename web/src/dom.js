// What every view of the page uses: building elements (user data only ever as text), the
// page's error and notice lines, and how sizes, times and folder names read.

import { ApiError } from './api.js'

export const $ = (id) => document.getElementById(id)

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag)
  Object.assign(node, props)
  node.append(...children)
  return node
}

/** A button whose accessible name says what it acts on, when its label alone would not. */
export function button(label, accessibleName, onClick) {
  const b = el('button', { type: 'button', textContent: label })
  if (accessibleName && accessibleName !== label) b.setAttribute('aria-label', accessibleName)
  b.addEventListener('click', onClick)
  return b
}

/** A small folder or file mark before a name; decoration only. */
export function icon(type) {
  const mark = el('span', { className: `icon ${type}` })
  mark.setAttribute('aria-hidden', 'true')
  return mark
}

const errorLine = $('error')
const noticeLine = $('notice')

/** One line saying what went wrong; an empty message hides it. */
export function showError(message) {
  errorLine.textContent = message
  errorLine.hidden = !message
}

export function notify(message) {
  noticeLine.textContent = message
}

export function messageOf(error) {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error)
}

/** Runs `action`, showing its failure; resolves to undefined on failure. */
export async function attempt(action) {
  try {
    showError('')
    return await action()
  } catch (e) {
    showError(messageOf(e))
    return undefined
  }
}

// Sizes in binary units, as the server counts part sizes and quotas.
export function formatSize(bytes) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return unit === 0 ? `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}` : `${value.toFixed(1)} ${units[unit]}`
}

export function formatTime(rfc3339) {
  const date = new Date(rfc3339)
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleString()
}

export function formatDate(rfc3339) {
  const date = new Date(rfc3339)
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toLocaleDateString()
}

/** The root folder's name is empty on the wire; the page calls it "Your files". */
export function folderName(folder) {
  return folder.folder_id === 'root' ? 'Your files' : folder.name
}

/**
 * Makes `parent`'s children `nodes`, inserting, moving and removing only what differs: a node
 * that stays is never detached, so a click on it while a listing answers is not lost.
 */
export function keepChildren(parent, nodes) {
  nodes.forEach((node, i) => {
    if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] ?? null)
  })
  while (parent.children.length > nodes.length) parent.lastElementChild.remove()
}

/**
 * Fills `list` (an `<ol>`) with breadcrumbs for `{folder, ancestors}`: one `link(id, name)`
 * per ancestor, root first, then the folder itself, marked as the current one. The same path
 * again leaves the list as it is (a click on a crumb while the folder is listed again counts).
 */
export function renderCrumbs(list, { folder, ancestors }, link) {
  const path = JSON.stringify([...ancestors, folder].map((f) => [f.folder_id, f.name]))
  if (list.children.length > 0 && list.dataset.path === path) return
  list.dataset.path = path
  const items = ancestors.map((a) => el('li', {}, link(a.folder_id, folderName(a))))
  const current = el('span', { textContent: folderName(folder) })
  current.setAttribute('aria-current', 'location')
  items.push(el('li', {}, current))
  list.replaceChildren(...items)
}
