/**
 * Erasing a member's personal data from what Tally stored about them: text that is, or holds, one
 * of their personal strings (name, email, the host app's id), and what their calls carried that
 * they wrote or uploaded. Amounts and counts are never touched.
 */

export const ERASED = '[erased]';

/**
 * The value with every string equal to a personal one made null, and every string holding one
 * given "[erased]" in its place, at any depth. `fieldsToNull` names fields of an object to make
 * null outright (a member object's own name, email and external id).
 */
export function scrubPersonal(
  value: unknown,
  personal: readonly string[],
  fieldsToNull: (record: Record<string, unknown>) => readonly string[] = () => [],
): unknown {
  const scrub = (v: unknown): unknown => {
    if (typeof v === 'string') {
      if (personal.includes(v)) return null;
      return personal.reduce((text, s) => text.split(s).join(ERASED), v);
    }
    if (Array.isArray(v)) return v.map(scrub);
    if (v && typeof v === 'object') {
      const record = v as Record<string, unknown>;
      const nulled = fieldsToNull(record);
      return Object.fromEntries(
        Object.entries(record).map(([k, f]) => [k, nulled.includes(k) ? null : scrub(f)]),
      );
    }
    return v;
  };
  return scrub(value);
}

/**
 * An event's metadata once its member is erased: personal strings scrubbed, and what the member
 * wrote or uploaded named no more (the conversation's title, the names of files); the numbers the
 * usage pages read from it (token splits, sizes, processing time) and its tool stay.
 */
export function erasedMetadata(metadata: Record<string, unknown>, personal: readonly string[]) {
  const out = scrubPersonal(metadata, personal) as Record<string, unknown>;
  if (typeof out.conversation_title === 'string') out.conversation_title = ERASED;
  if (Array.isArray(out.files)) {
    out.files = out.files.map((file: unknown) =>
      file && typeof file === 'object' && typeof (file as { name?: unknown }).name === 'string'
        ? { ...file, name: ERASED }
        : file,
    );
  }
  return out;
}
