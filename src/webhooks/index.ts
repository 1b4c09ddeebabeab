// Job webhooks' public surface: callback URL rules, signatures, one delivery attempt and the delivery log.
export {
  CallbackUrlError,
  isNonPublicAddress,
  MAX_CALLBACK_URL_LENGTH,
  validateCallbackUrl,
} from './callback-url.ts';
export { postWebhook, type WebhookAttempt } from './deliver.ts';
export { appendAttempt, readDeliveryLog } from './delivery-log.ts';
export {
  DELIVERY_HEADER,
  EVENT_HEADER,
  SIGNATURE_HEADER,
  signatureHeader,
  signatureOf,
  TIMESTAMP_HEADER,
  verifySignature,
} from './signature.ts';
export { secretFromConfig, type WebhookSecretSource } from './secrets.ts';
