// Uppy wired to the filestore API: the server creates, presigns, lists, completes and aborts
// each S3 multipart upload; the browser only PUTs part bytes to the presigned URLs. Before
// that, each file is tried as an instant upload (a proof of possession, DESIGN.md); when the
// server answers `upload_required` or `429`, the file is uploaded as usual, with a note.

import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import AwsS3 from '@uppy/aws-s3'

import { ApiError, api } from './api.js'

const MIB = 1024 * 1024
/** The server's default part size (DESIGN.md, "Part sizing"). */
const DEFAULT_PART_SIZE = 8 * MIB
const MAX_PARTS = 10_000
/** S3's largest object. */
const MAX_FILE_SIZE = 5 * 1024 * 1024 * MIB

/**
 * The part size the server picks for a file of `size` bytes: 8 MiB, raised to whole MiB so
 * that there are at most 10,000 parts. The page sends it explicitly and Uppy cuts the file at
 * the same size, so every part but the last is exactly `part_size`, as completion requires.
 */
export function partSizeFor(size) {
  const smallest = Math.ceil(size / MAX_PARTS)
  return smallest <= DEFAULT_PART_SIZE ? DEFAULT_PART_SIZE : Math.ceil(smallest / MIB) * MIB
}

/** Instant upload hashes the whole file in memory, so only files up to this size try it. */
const INSTANT_MAX_SIZE = 256 * MIB

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('')
}

async function sha256Hex(...chunks) {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0)
  const joined = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    joined.set(c, at)
    at += c.byteLength
  }
  return hex(await crypto.subtle.digest('SHA-256', joined))
}

/**
 * Instant upload of `file` (an Uppy file): the stored File when the server holds its content
 * and the proof matched, `null` when the bytes must be sent. Throws the server's `ApiError`
 * (a `429` among them).
 */
async function instantUpload(file) {
  const data = new Uint8Array(await file.data.arrayBuffer())
  const challenge = await api.fastUpload({
    name: file.name,
    size: file.size,
    sha256: await sha256Hex(data),
    parent_id: file.meta.parent_id ?? 'root',
  })
  const nonce = Uint8Array.from(challenge.nonce.match(/../g) ?? [], (h) => parseInt(h, 16))
  const ranges = challenge.ranges.map((r) => data.subarray(r.offset, r.offset + r.length))
  const answer = await api.prove(challenge.challenge_id, await sha256Hex(nonce, ...ranges))
  return answer.status === 'complete' ? answer.file : null
}

/** Seconds until an RFC 3339 time, for Uppy's request timeout on a presigned URL. */
function secondsUntil(rfc3339) {
  const ms = Date.parse(rfc3339) - Date.now()
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : undefined
}

/**
 * Mounts the Dashboard in `target`. Each file goes to the folder `folderId()` names when it
 * is added (navigating away while it uploads does not move it). `onUploaded(file)` gets each
 * completed File (DESIGN.md's File object); `onError(message)` gets failures worth telling the
 * user.
 */
export function createUploader(target, { folderId, onUploaded, onError }) {
  const uppy = new Uppy({
    id: 'filestore',
    autoProceed: false,
    restrictions: { maxFileSize: MAX_FILE_SIZE },
  })

  uppy.use(Dashboard, {
    target,
    inline: true,
    height: 340,
    width: '100%',
    theme: 'light',
    proudlyDisplayPoweredByUppy: false,
    showRemoveButtonAfterComplete: false,
    note: 'Files go straight to storage in parts; a paused upload resumes where it stopped.',
  })
  uppy.on('file-added', (file) => uppy.setFileMeta(file.id, { parent_id: folderId() }))

  uppy.use(AwsS3, {
    shouldUseMultipart: true,
    limit: 4,
    getChunkSize: (file) => partSizeFor(file.size),

    async createMultipartUpload(file) {
      const partSize = partSizeFor(file.size)
      const created = await api.createUpload({
        name: file.name,
        size: file.size,
        part_size: partSize,
        parent_id: file.meta.parent_id ?? 'root',
        ...(file.type ? { content_type: file.type } : {}),
      })
      if (created.part_size !== partSize) {
        // Parts cut at another size would be refused at completion; stop now instead.
        await api.abortUpload(created.upload_id).catch(() => {})
        throw new Error(
          `The server chose ${created.part_size}-byte parts instead of ${partSize}; upload cancelled.`,
        )
      }
      // Our upload id names the upload on every later call; S3's key stays on the server.
      return { uploadId: created.upload_id, key: created.upload_id }
    },

    async signPart(_file, { uploadId, partNumber, signal }) {
      const { parts } = await api.presignParts(uploadId, [partNumber], { signal })
      const part = parts[0]
      return {
        method: 'PUT',
        url: part.url,
        headers: part.headers,
        expires: secondsUntil(part.expires_at),
      }
    },

    async listParts(_file, { uploadId, signal }) {
      const status = await api.uploadStatus(uploadId, { signal })
      return status.parts_done.map((p) => ({ PartNumber: p.part_number, Size: p.size, ETag: p.etag }))
    },

    async completeMultipartUpload(_file, { uploadId, signal }) {
      // The server completes from S3's own part list, so the ETags Uppy collected are not sent.
      const { file } = await api.completeUpload(uploadId, { signal })
      return { location: `/v1/files/${file.file_id}`, file }
    },

    async abortMultipartUpload(_file, { uploadId, signal }) {
      await api.abortUpload(uploadId, { signal })
    },
  })

  // Instant upload first; a file stored that way leaves the upload, the others go on to S3.
  let instantRefused = false
  uppy.addPreProcessor(async (fileIDs) => {
    for (const id of fileIDs) {
      const file = uppy.getFile(id)
      if (!file || instantRefused || file.size > INSTANT_MAX_SIZE || !globalThis.crypto?.subtle) {
        continue
      }
      try {
        const stored = await instantUpload(file)
        if (stored) {
          uppy.removeFile(id)
          onUploaded(stored)
          uppy.info(`${file.name}: stored instantly, no bytes sent.`, 'info', 5000)
        }
        // Not stored (the usual case): the upload's own progress says what happens next.
      } catch (error) {
        if (error instanceof ApiError && error.status === 429) {
          instantRefused = true
          uppy.info('Instant upload is refused for now (too many attempts this hour); uploading the bytes.', 'info', 5000)
        }
        // Anything else: the normal upload below says what is wrong, if anything is.
      }
    }
  })

  uppy.on('upload-success', (_file, response) => {
    const file = response?.body?.file
    if (file) onUploaded(file)
  })
  uppy.on('upload-error', (file, error) => {
    onError(`${file?.name ?? 'A file'} was not uploaded: ${error?.message ?? error}`)
  })
  return uppy
}
