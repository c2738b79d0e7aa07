//! Finding the few bytes that matter in long runs of plain text.
//!
//! Statements are read three times over on their way in (the entry's escapes, the note's
//! text, the JSON strings), a kilobyte each, and almost every byte is plain. Asking "is this
//! byte special?" one byte at a time and stopping at the first costs a compare and a branch
//! per byte; asking it of sixteen bytes at once, without stopping, lets the compiler use
//! vector instructions, and only the block that holds a special byte is looked at closely.
//! Where special bytes are frequent (an entry's statement escapes every quote of its JSON), a
//! plain loop is better, and is what `entry` uses.

/// Bytes looked at together.
const BLOCK: usize = 16;

/// The position of the first byte of `b` for which `special` holds. `special` must be a
/// pure, cheap test of one byte (a few compares): it is evaluated on every byte of each block.
/// The first block is looked at a byte at a time, so that a short run costs no more than a
/// plain loop.
#[inline]
pub fn first(b: &[u8], special: impl Fn(u8) -> bool) -> Option<usize> {
    let head = b.len().min(BLOCK);
    if let Some(i) = b[..head].iter().position(|&c| special(c)) {
        return Some(i);
    }
    let mut blocks = b[head..].chunks_exact(BLOCK);
    let mut at = head;
    for block in blocks.by_ref() {
        if block.iter().fold(false, |any, &c| any | special(c)) {
            return block.iter().position(|&c| special(c)).map(|i| at + i);
        }
        at += BLOCK;
    }
    let tail = blocks.remainder();
    tail.iter().position(|&c| special(c)).map(|i| at + i)
}

/// Whether `text` holds a control character (Unicode category Cc: U+0000..U+001F and
/// U+007F..U+009F), newlines excepted when `newline_ok`. Exactly `text.chars().any(|c|
/// c.is_control() && !(newline_ok && c == '\n'))`, read as bytes: in UTF-8, U+0080..U+009F
/// are 0xC2 followed by 0x80..0x9F.
pub fn has_control(text: &str, newline_ok: bool) -> bool {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(i) = first(&b[from..], |c| c < 0x20 || c == 0x7f || c == 0xc2) {
        let at = from + i;
        match b[at] {
            b'\n' if newline_ok => {}
            0xc2 if !matches!(b.get(at + 1), Some(0x80..=0x9f)) => {}
            _ => return true,
        }
        from = at + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts that put special bytes at every offset of a block, and every kind of character
    /// near the edges: ASCII controls, DEL, C1 controls, other two-byte characters starting
    /// with 0xC2, longer characters.
    fn texts() -> Vec<String> {
        let pieces = [
            "a", "\n", "\t", "\u{0}", "\u{1f}", "\u{7f}", "\u{80}", "\u{9f}", "\u{a0}", "é", "£",
            "\u{2028}", "😀", "\"", "\\", " ",
        ];
        let mut out = vec![String::new()];
        for (i, p) in pieces.iter().enumerate() {
            for len in [0, 1, 15, 16, 17, 31, 33] {
                let mut s = "x".repeat(len);
                s.push_str(p);
                s.push_str(&"y".repeat(i));
                out.push(s.clone());
                out.push(format!("{s}{}", pieces[(i + 3) % pieces.len()]));
            }
        }
        out
    }

    #[test]
    fn first_finds_the_first_special_byte() {
        for t in texts() {
            let b = t.as_bytes();
            for special in [b'"', b'\\', b'\n', 0xc2] {
                let want = b.iter().position(|&c| c == special || c < 0x09);
                assert_eq!(first(b, |c| c == special || c < 0x09), want, "{t:?}");
            }
        }
    }

    #[test]
    fn has_control_is_chars_is_control() {
        for t in texts() {
            for newline_ok in [false, true] {
                let want = t
                    .chars()
                    .any(|c| c.is_control() && !(newline_ok && c == '\n'));
                assert_eq!(has_control(&t, newline_ok), want, "{t:?} {newline_ok}");
            }
        }
    }
}
