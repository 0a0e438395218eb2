/** A fresh random id with a prefix naming what it is: `evt_` for events, `idem_` for Idempotency-Keys. */
export const newId = (prefix: string) => `${prefix}_${crypto.randomUUID().replaceAll('-', '')}`;
