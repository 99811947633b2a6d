/**
 * A stored file sent for download over a Fastify reply, as the job page and the API send
 * artifacts: an attachment under its base name, typed as bytes and never sniffed, so a browser
 * saves it rather than rendering what a job wrote.
 */
import type { FastifyReply } from 'fastify';

/** Sets the download's headers; the caller adds its own and sends the body. */
export function asDownload(reply: FastifyReply, filePath: string, size: number): FastifyReply {
  const name = filePath.slice(filePath.lastIndexOf('/') + 1);
  return reply
    .type('application/octet-stream')
    .header('content-length', String(size))
    .header('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(name)}`)
    .header('x-content-type-options', 'nosniff');
}
