/**
 * QEMU's "modified UTF-8" rules (`util/unicode.c`), shared by the JSON parser and writer.
 *
 * Modified UTF-8 is UTF-8 where U+0000 may also be spelled `C0 80`. QEMU rejects, both in
 * parsed strings and when it prints a string, every sequence that is not well formed, is
 * overlong (except `C0 80`), encodes a surrogate, a codepoint beyond U+10FFFF, or one of
 * Unicode's 66 noncharacters. Where it prints, each rejected sequence becomes one U+FFFD.
 *
 * Pure: no `node:*` imports (wire/json-* is part of the pure core, docs/design.md principle 4).
 *
 * @module
 */

/** Smallest codepoint for a sequence of 2, 3, 4, 5, 6 bytes; below it the sequence is overlong. */
const minCodepoint = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/** Whether QEMU accepts `cp` as a character: in range, not a surrogate, not a noncharacter. */
export function isValidCodepoint(cp: number): boolean {
  if (cp > 0x10ffff || cp < 0) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  return !(cp >= 0xd800 && cp <= 0xdfff);
}

/**
 * Decodes the sequence at `bytes[at]`, reading no further than `end` (bytes beyond count as 0).
 * Returns the codepoint, or -1 for an invalid sequence, and stores where the sequence ended in
 * `next.end`: after an impossible byte (0xFE, 0xFF) or a stray continuation byte, one byte on;
 * after a truncated sequence, just past the continuation bytes that were there.
 */
export function modUtf8Codepoint(
  bytes: Uint8Array,
  at: number,
  end: number,
  next: { end: number },
): number {
  let p = at;
  const first = p < end ? bytes[p]! : 0;
  if (first === 0) {
    next.end = at;
    return -1;
  }
  p++;
  let cp: number;
  if (first < 0x80) {
    cp = first;
  } else if (first >= 0xfe || (first & 0x40) === 0) {
    cp = -1;
  } else {
    let len = 0;
    let mask = 0x80;
    while (first & mask) {
      len++;
      mask >>= 1;
    }
    cp = first & (mask - 1);
    for (let i = 1; i < len; i++) {
      const b = p < end ? bytes[p]! : 0;
      if ((b & 0xc0) !== 0x80) {
        next.end = p;
        return -1;
      }
      p++;
      cp = cp * 64 + (b & 0x3f);
    }
    if (!isValidCodepoint(cp)) cp = -1;
    else if (cp < minCodepoint[len - 2]! && !(cp === 0 && len === 2)) cp = -1;
  }
  next.end = p;
  return cp;
}

/**
 * Turns bytes into the string QEMU would print for them: like a C string it stops at the first
 * zero byte, and every sequence `modUtf8Codepoint` rejects becomes U+FFFD. Used for error
 * texts that quote raw input (`stray '…'`), so that writing the text back out with
 * `writeQemuJson` gives QEMU's bytes.
 */
export function decodeQemuText(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let out = "";
  const next = { end: 0 };
  let p = start;
  while (p < end && bytes[p] !== 0) {
    const b = bytes[p]!;
    if (b < 0x80) {
      out += String.fromCharCode(b);
      p++;
      continue;
    }
    const cp = modUtf8Codepoint(bytes, p, end, next);
    out += String.fromCodePoint(cp < 0 ? 0xfffd : cp);
    p = next.end > p ? next.end : p + 1;
  }
  return out;
}

/** The UTF-8 length of a JavaScript string (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
