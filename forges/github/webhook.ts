/** GitHub webhooks: X-GitHub-* headers and an `sha256=<hex>` signature. */
import { header, type WebhookDialect } from '../forge';

export const githubWebhook: WebhookDialect = {
  deliveryMeta: (h) => ({
    event: header(h, 'x-github-event'),
    deliveryId: header(h, 'x-github-delivery'),
    signature: header(h, 'x-hub-signature-256'),
    signatureHeader: 'X-Hub-Signature-256',
  }),
  signatureHex: (signature) => /^sha256=([0-9a-f]{64})$/i.exec(signature)?.[1],
  signatureShape: 'signature is not sha256=<64 hex digits>',
  eventHeaders: 'X-GitHub-Event',
};
