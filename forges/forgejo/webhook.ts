/** Forgejo and Gitea webhooks: their headers, and a bare-hex HMAC-SHA256 signature. */
import { header, type WebhookDialect } from '../forge';

export const forgejoWebhook: WebhookDialect = {
  deliveryMeta(h) {
    // Forgejo sends both its own and Gitea's headers; Gitea only its own (and Gogs').
    const forgejoSig = header(h, 'x-forgejo-signature');
    return {
      event: header(h, 'x-forgejo-event') ?? header(h, 'x-gitea-event') ?? header(h, 'x-gogs-event'),
      deliveryId:
        header(h, 'x-forgejo-delivery') ?? header(h, 'x-gitea-delivery') ?? header(h, 'x-gogs-delivery'),
      signature: forgejoSig ?? header(h, 'x-gitea-signature'),
      signatureHeader: forgejoSig !== undefined ? 'X-Forgejo-Signature' : 'X-Gitea-Signature',
    };
  },
  signatureHex: (signature) => /^([0-9a-f]{64})$/i.exec(signature)?.[1],
  signatureShape: 'signature is not 64 hex digits',
  eventHeaders: 'X-Forgejo-Event / X-Gitea-Event',
};
