// The filestore HTTP API (docs/DESIGN.md), beside the page. Every failure becomes an ApiError
// carrying the server's `{"error":{"code","message"}}`, so callers can show the message as it
// is. Routes are resolved against the page's own URL, not the origin's root: the API may sit
// under a path (a stage or base path mapping on AWS, `/_aws/execute-api/<id>/` in MiniStack),
// and the page is served at that API's root.

const TOKEN_KEY = 'filestore.token'

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

// The token lives in sessionStorage: it ends with the tab, and other tabs do not share it.
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY)
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value)
    else sessionStorage.removeItem(TOKEN_KEY)
  },
}

// Called when the server rejects the token, so the page can ask for a new login.
let onUnauthorized = () => {}
export function whenUnauthorized(callback) {
  onUnauthorized = callback
}

/**
 * How long the page waits for an answer. API Gateway gives up on a function after 30 s and
 * answers 503 itself, so a request still unanswered well past that will not be answered: the
 * page says so (the user can try again) rather than waiting forever with no sign.
 */
export const ANSWER_TIMEOUT_MS = 45_000

async function request(method, path, body, { signal } = {}) {
  const headers = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const token = session.token
  if (token) headers.Authorization = `Bearer ${token}`
  // Aborted by the caller (`signal`, e.g. Uppy cancelling) or when no answer came in time; a
  // plain timer, not AbortSignal.timeout, so a test's clock can move it.
  const abort = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    abort.abort()
  }, ANSWER_TIMEOUT_MS)
  const forward = () => abort.abort()
  if (signal?.aborted) abort.abort()
  signal?.addEventListener('abort', forward)
  let response
  let text
  try {
    response = await fetch(`.${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: abort.signal,
      credentials: 'omit',
    })
    text = await response.text()
  } catch (e) {
    if (timedOut) {
      throw new ApiError(0, 'timeout', `The server did not answer within ${ANSWER_TIMEOUT_MS / 1000} s. Please try again.`)
    }
    if (e.name === 'AbortError') throw e
    throw new ApiError(0, 'network', `The server could not be reached (${e.message}).`)
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', forward)
  }
  if (response.status === 204) return null
  let data = null
  try {
    data = text ? JSON.parse(text) : null
  } catch {
    // Not JSON: reported below by status.
  }
  if (!response.ok) {
    const error = data?.error
    const failure = new ApiError(
      response.status,
      error?.code ?? 'http_error',
      error?.message ?? `The server answered ${response.status} ${response.statusText}.`,
    )
    if (response.status === 401 && token) onUnauthorized(failure)
    throw failure
  }
  return data
}

export const api = {
  signup: (username, password) => request('POST', '/v1/auth/signup', { username, password }),
  login: (username, password) => request('POST', '/v1/auth/login', { username, password }),
  me: () => request('GET', '/v1/me'),

  createUpload: (input, opts) => request('POST', '/v1/uploads', input, opts),
  presignParts: (uploadId, partNumbers, opts) =>
    request('POST', `/v1/uploads/${enc(uploadId)}/parts`, { part_numbers: partNumbers }, opts),
  uploadStatus: (uploadId, opts) => request('GET', `/v1/uploads/${enc(uploadId)}`, undefined, opts),
  completeUpload: (uploadId, opts) =>
    request('POST', `/v1/uploads/${enc(uploadId)}/complete`, {}, opts),
  abortUpload: (uploadId, opts) => request('DELETE', `/v1/uploads/${enc(uploadId)}`, undefined, opts),

  fastUpload: (input) => request('POST', '/v1/fast-upload', input),
  prove: (challengeId, proof) =>
    request('POST', `/v1/fast-upload/${enc(challengeId)}/proof`, { proof }),

  downloadUrl: (fileId) => request('GET', `/v1/files/${enc(fileId)}/download`),
  /** A rename, a move, or both: `change` is `{name?, parent_id?}`. */
  patchFile: (fileId, change) => request('PATCH', `/v1/files/${enc(fileId)}`, change),
  deleteFile: (fileId) => request('DELETE', `/v1/files/${enc(fileId)}`),

  /** `{folder, ancestors}`: the folder and its breadcrumbs, root first. */
  folder: (folderId) => request('GET', `/v1/folders/${enc(folderId)}`),
  children: (folderId, cursor, limit = 100) =>
    request('GET', `/v1/folders/${enc(folderId)}/children${page(limit, cursor)}`),
  createFolder: (name, parentId) =>
    request('POST', '/v1/folders', { name, parent_id: parentId }),
  patchFolder: (folderId, change) => request('PATCH', `/v1/folders/${enc(folderId)}`, change),
  deleteFolder: (folderId) => request('DELETE', `/v1/folders/${enc(folderId)}`),

  trash: (cursor) => request('GET', `/v1/trash${page(100, cursor)}`),
  /** Back where it was, or into `parentId` when given. */
  restore: (id, parentId) =>
    request('POST', `/v1/trash/${enc(id)}/restore`, parentId ? { parent_id: parentId } : {}),
  purge: (id) => request('DELETE', `/v1/trash/${enc(id)}`),
  emptyTrash: () => request('DELETE', '/v1/trash'),

  createShare: (fileId, expiresIn, maxDownloads) =>
    request('POST', `/v1/files/${enc(fileId)}/shares`, {
      expires_in: expiresIn,
      ...(maxDownloads === undefined ? {} : { max_downloads: maxDownloads }),
    }),
  listShares: (fileId) => request('GET', `/v1/files/${enc(fileId)}/shares`),
  revokeShare: (shareId) => request('DELETE', `/v1/shares/${enc(shareId)}`),
}

function enc(id) {
  return encodeURIComponent(id)
}

function page(limit, cursor) {
  return `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
}
