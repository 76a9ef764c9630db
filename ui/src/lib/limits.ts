// Limits of the server's account and device checks (hearth_access::users
// and hearth_access::password). The UI checks them before sending a request,
// so the reason appears at once. pair.js uses the same values.

/** Maximum device name length, in UTF-8 bytes. */
export const MAX_DEVICE_NAME_BYTES = 128;
/** Maximum user name length, in characters. */
export const MAX_USER_NAME_CHARS = 64;
/** Minimum password length, in characters. */
export const MIN_PASSWORD_CHARS = 12;
/** Maximum password length, in UTF-8 bytes. */
export const MAX_PASSWORD_BYTES = 1024;

const encoder = new TextEncoder();

/** Returns the UTF-8 length of `text` in bytes. */
export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/** Returns whether `text` has a control character. */
export function hasControlCharacter(text: string): boolean {
  return /\p{Cc}/u.test(text);
}
