// Uppy wired to the filestore API: the server creates, presigns, lists, completes and aborts
// each S3 multipart upload; the browser only PUTs part bytes to the presigned URLs.

import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import AwsS3 from '@uppy/aws-s3'

import { api } from './api.js'

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

/** Seconds until an RFC 3339 time, for Uppy's request timeout on a presigned URL. */
function secondsUntil(rfc3339) {
  const ms = Date.parse(rfc3339) - Date.now()
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : undefined
}

/**
 * Mounts the Dashboard in `target`. `onUploaded(file)` gets each completed File (DESIGN.md's
 * File object); `onError(message)` gets failures worth telling the user.
 */
export function createUploader(target, { onUploaded, onError }) {
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

  uppy.on('upload-success', (_file, response) => {
    const file = response?.body?.file
    if (file) onUploaded(file)
  })
  uppy.on('upload-error', (file, error) => {
    onError(`${file?.name ?? 'A file'} was not uploaded: ${error?.message ?? error}`)
  })
  return uppy
}
