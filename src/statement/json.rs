//! A strict JSON reader for statement text.
//!
//! General-purpose parsers are lenient where Candor must not be: they keep the last of two
//! duplicate keys, accept `1.0`, `-0` and `1e3` as numbers and let escaped control characters
//! through. Two verifiers that disagree on what a statement says would break the ledger, so
//! statements are read by this small parser, which accepts one spelling of every value:
//! objects without duplicate keys, integers `0|[1-9][0-9]*` up to 2^53−1, strings without
//! control characters or lone surrogates (escaped or not), and nothing else.
//!
//! Spaces between tokens are accepted (`{"v": 1, …}`, as many JSON encoders write by
//! default): the protocol's lexical rules do not forbid them and they change no value, while
//! the statement hash covers the text as sent. Tabs, carriage returns and newlines, JSON's
//! other whitespace, are control characters, which the protocol refuses everywhere.

use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Largest integer a statement may hold: JSON numbers beyond it lose precision in many
/// languages.
pub const MAX_INT: u64 = (1 << 53) - 1;

/// Deepest nesting accepted: request records are three levels deep; patches a little more.
pub const MAX_DEPTH: usize = 16;

/// A lexical error: what is wrong, and the JSON pointer of the value where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub detail: String,
    pub pointer: String,
}

struct Parser<'a> {
    text: &'a str,
    s: &'a [u8],
    pos: usize,
    /// Where the value being read is, for error messages only: kept as positions, so that a
    /// valid statement costs no copy of its keys.
    path: Vec<Step>,
}

/// One step of [`Parser::path`].
#[derive(Clone, Copy)]
enum Step {
    /// The member whose key's opening quote is at this byte.
    Key(usize),
    /// The array item with this index.
    Item(usize),
}

/// Parses exactly one JSON value spanning all of `text`.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let mut p = Parser {
        text,
        s: text.as_bytes(),
        pos: 0,
        path: Vec::new(),
    };
    p.spaces()?;
    let v = p.value(0)?;
    p.spaces()?;
    if p.pos != p.s.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(v)
}

/// RFC 6901 escaping of one pointer token.
pub fn pointer_token(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

impl Parser<'_> {
    fn err(&self, detail: &str) -> JsonError {
        let token = |step: &Step| match *step {
            Step::Key(at) => {
                let mut key = Parser {
                    pos: at,
                    path: Vec::new(),
                    ..*self
                };
                key.string().unwrap_or_default()
            }
            Step::Item(i) => i.to_string(),
        };
        let pointer: String = self
            .path
            .iter()
            .map(|t| format!("/{}", pointer_token(&token(t))))
            .collect();
        JsonError {
            detail: format!("{detail} (at byte {})", self.pos),
            pointer,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", b as char)))
        }
    }

    /// Skips spaces between tokens; JSON's other whitespace is refused as what it is.
    fn spaces(&mut self) -> Result<(), JsonError> {
        while let Some(c) = self.peek() {
            match c {
                b' ' => self.pos += 1,
                b'\t' | b'\r' | b'\n' => {
                    return Err(self.err(
                        "tabs, carriage returns and newlines are control characters, not allowed \
                         in statement JSON (spaces are)",
                    ))
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, JsonError> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("JSON nested too deeply"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'0'..=b'9') => self.integer(),
            Some(b'-') => {
                Err(self
                    .err("negative numbers are not allowed: integers are written 0|[1-9][0-9]*"))
            }
            Some(_) => Err(self.err("expected a JSON value")),
            None => Err(self.err("truncated JSON")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.eat(b'{')?;
        self.spaces()?;
        let mut map = Map::new();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected an object key"));
            }
            let at = self.pos;
            let key = self.string()?;
            let slot = match map.entry(key) {
                Entry::Vacant(slot) => slot,
                Entry::Occupied(dup) => {
                    self.path.push(Step::Key(at));
                    return Err(self.err(&format!("duplicate object key {:?}", dup.key())));
                }
            };
            self.spaces()?;
            self.eat(b':')?;
            self.spaces()?;
            self.path.push(Step::Key(at));
            let v = self.value(depth + 1)?;
            self.path.pop();
            slot.insert(v);
            self.spaces()?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.spaces()?;
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.eat(b'[')?;
        self.spaces()?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.path.push(Step::Item(items.len()));
            let v = self.value(depth + 1)?;
            self.path.pop();
            items.push(v);
            self.spaces()?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.spaces()?;
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn integer(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(self.err("only integers are allowed (no fractions or exponents)"));
        }
        let digits = &self.s[start..self.pos];
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(self.err("integers must not have leading zeros"));
        }
        if digits.len() > 16 {
            return Err(self.err("integer larger than 2^53-1"));
        }
        let n: u64 = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| self.err("invalid integer"))?;
        if n > MAX_INT {
            return Err(self.err("integer larger than 2^53-1"));
        }
        Ok(Value::Number(Number::from(n)))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("truncated \\u escape"))?;
        let s = std::str::from_utf8(h).map_err(|_| self.err("invalid \\u escape"))?;
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err("invalid \\u escape"));
        }
        self.pos += 4;
        u32::from_str_radix(s, 16).map_err(|_| self.err("invalid \\u escape"))
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            // Copy a run of plain characters at once (the input is valid UTF-8: it is a &str).
            // It ends at a quote, a backslash or a control character: below 0x20, DEL, or a
            // C1 control (U+0080..U+009F, 0xC2 then 0x80..0x9F; other characters starting
            // with 0xC2 are plain).
            let special = |c: u8| c == b'"' || c == b'\\' || c < 0x20 || c == 0x7f || c == 0xc2;
            loop {
                let Some(i) = self
                    .s
                    .get(self.pos..)
                    .and_then(|r| crate::scan::first(r, special))
                else {
                    self.pos = self.s.len();
                    break;
                };
                self.pos += i;
                let c1 = matches!(self.s.get(self.pos + 1), Some(0x80..=0x9f));
                if self.peek() == Some(0xc2) && !c1 {
                    self.pos += 1; // a plain character that starts with 0xC2
                    continue;
                }
                break;
            }
            // A run ends before an ASCII byte, a 0xC2 or at the end, so on a character boundary.
            let run = (self.text)
                .get(start..self.pos)
                .ok_or_else(|| self.err("invalid UTF-8"))?;
            out.push_str(run);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'u') => {
                            self.pos += 1;
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.err("lone surrogate in \\u escape"));
                            } else {
                                hi
                            };
                            let c =
                                char::from_u32(cp).ok_or_else(|| self.err("invalid \\u escape"))?;
                            if c.is_control() {
                                return Err(
                                    self.err("control characters are not allowed, escaped or not")
                                );
                            }
                            self.pos -= 1; // the shared increment below
                            c
                        }
                        Some(b'b' | b'f' | b'n' | b'r' | b't') => {
                            return Err(
                                self.err("control characters are not allowed, escaped or not")
                            )
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => return Err(self.err("control characters are not allowed")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_spelling() {
        let v =
            parse(r#"{"a":[1,0,"x\u00e9\ud83d\ude00\"\\\/"],"b":{"c":null,"d":true}}"#).unwrap(); // ok: test
        assert_eq!(v["a"][2], "xé😀\"\\/");
        assert_eq!(v["a"][0], 1);
    }

    /// Spaces between tokens change nothing; inside strings they are part of the value.
    #[test]
    fn spaces_between_tokens_are_insignificant() {
        let compact = r#"{"a":[1,{"b":null}],"c":" x ","d":{}}"#;
        let spaced = r#"  { "a" : [ 1 , { "b" : null } ] , "c" : " x " , "d" : { } }  "#;
        assert_eq!(parse(spaced).unwrap(), parse(compact).unwrap()); // ok: test
        assert_eq!(parse(compact).unwrap()["c"], " x "); // ok: test
        assert_eq!(parse(r#"{"a": 1, "a": 2}"#).unwrap_err().pointer, "/a");
        let tab = parse("{\"a\":\t1}").unwrap_err();
        assert!(tab.detail.contains("control characters"), "{}", tab.detail);
    }

    #[test]
    fn refuses_the_lenient_spellings() {
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1.0}"#,
            r#"{"a":-1}"#,
            r#"{"a":01}"#,
            r#"{"a":1e3}"#,
            r#"{"a":9007199254740992}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00x"}"#,
            r#"{"a":"\u0001"}"#,
            r#"{"a":"\n"}"#,
            "{\"a\":\"\t\"}",
            "{\"a\":\t1}",
            "{\"a\":1\r}",
            "\t{\"a\":1}",
            "{\"a\":[1,\n2]}",
            r#"{"a": 1,}"#,
            r#"{"a":[1, ]}"#,
            r#"{"a":1}x"#,
            r#"{"a":tru}"#,
            r#"{"a":"x"#,
            r#"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]"#,
            "{\"a\":\"\u{85}\"}",
            "{\"a\":\"x\u{7f}\"}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse(r#"{"x":{"a":1,"a":2}}"#).unwrap_err().pointer, "/x/a");
        let deep = r#"{"x":[0,{"a\u002fb~":[1,2.5]}]}"#;
        assert_eq!(parse(deep).unwrap_err().pointer, "/x/1/a~1b~0/1");
        assert!(parse(r#"{"a":9007199254740991}"#).is_ok());
    }

    /// Control characters are refused wherever they fall in a string, however long, and the
    /// other characters that share their first byte are read as they are.
    #[test]
    fn controls_are_found_at_any_offset() {
        for len in [0, 1, 14, 15, 16, 17, 40] {
            let pad = "é".repeat(len / 2) + &"x".repeat(len);
            for control in ["\u{1}", "\u{1f}", "\u{7f}", "\u{80}", "\u{85}", "\u{9f}"] {
                let bad = format!("{{\"a\":\"{pad}{control}{pad}\"}}");
                assert!(parse(&bad).is_err(), "{bad:?}");
            }
            for plain in ["\u{a0}", "£", "\u{bf}", "é", "\u{2028}", "😀", "~"] {
                let text = format!("{pad}{plain}{pad}{plain}");
                let good = format!("{{\"a\":\"{text}\",\"b\":1}}");
                let v = parse(&good).unwrap(); // ok: test
                assert_eq!(
                    (v["a"].as_str(), v["b"].as_u64()),
                    (Some(text.as_str()), Some(1))
                );
            }
        }
    }
}
