//! A lexer for MariaDB/MySQL statements, as exact as the checks in
//! [`super`] need: string literals (with or without backslash escapes),
//! quoted identifiers, comments, versioned comments (`/*!50003 ...*/`,
//! `/*M!100000 ...*/`, whose content the server runs, so it is lexed as
//! code), variables, numbers, words and punctuation. Every token keeps its
//! byte range in the source, so a checked statement can be rebuilt from
//! the source text itself.

use super::DdlError;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A bare word: a keyword, a function or an unquoted name.
    Word,
    /// A `` `quoted` `` identifier (or `"quoted"` under ANSI_QUOTES).
    Quoted,
    /// A string literal.
    Str,
    Number,
    /// `@name` (a user variable).
    Var,
    /// `@@name`, `@@global.name` ... (a system variable).
    SysVar,
    /// Any other single character.
    Punct,
}

/// One token: its kind, its byte range, and its value (the identifier
/// without quotes; the word as written; the variable's name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub value: String,
}

impl Token {
    /// A bare word equal to `word`, ignoring case.
    pub fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.value.eq_ignore_ascii_case(word)
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct && self.value.len() == c.len_utf8() && self.value.starts_with(c)
    }

    /// A word or a quoted identifier: something that can name an object.
    pub fn is_name(&self) -> bool {
        matches!(self.kind, Kind::Word | Kind::Quoted)
    }
}

/// How the statement's sql_mode changes lexing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mode {
    /// `NO_BACKSLASH_ESCAPES`: a backslash is an ordinary character.
    pub no_backslash_escapes: bool,
    /// `ANSI_QUOTES`: `"` quotes identifiers, not strings.
    pub ansi_quotes: bool,
}

impl Mode {
    pub fn from_sql_mode(sql_mode: &str) -> Mode {
        let has = |m: &str| {
            sql_mode
                .split(',')
                .any(|p| p.trim().eq_ignore_ascii_case(m))
        };
        Mode {
            no_backslash_escapes: has("NO_BACKSLASH_ESCAPES"),
            ansi_quotes: has("ANSI_QUOTES") || has("ANSI"),
        }
    }
}

fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Splits `sql` into tokens. Fails on an unterminated string, identifier
/// or comment, and on a NUL byte.
pub fn lex(sql: &str, mode: Mode) -> Result<Vec<Token>, DdlError> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_versioned = false;
    let unterminated = |what: &str, at: usize| DdlError::Syntax(format!("{what} at byte {at}"));
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            0 => return Err(DdlError::Syntax("a NUL byte".into())),
            b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') && b.get(i + 2).is_none_or(|&n| n <= b' ') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'*' if in_versioned && b.get(i + 1) == Some(&b'/') => {
                in_versioned = false;
                i += 2;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let versioned = match (b.get(i + 2), b.get(i + 3)) {
                    (Some(b'!'), _) => Some(i + 3),
                    (Some(b'M'), Some(b'!')) => Some(i + 4),
                    _ => None,
                };
                match versioned {
                    Some(after) if !in_versioned => {
                        // `/*!50003 code */`: the server runs the code.
                        in_versioned = true;
                        i = after;
                        while i < b.len() && b[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                    _ => {
                        let end = sql[i + 2..]
                            .find("*/")
                            .ok_or_else(|| unterminated("an unterminated comment", start))?;
                        i += 2 + end + 2;
                    }
                }
            }
            b'\'' | b'"' | b'`' => {
                let quote = c;
                let escapes = quote != b'`' && !mode.no_backslash_escapes;
                let mut value = Vec::new();
                i += 1;
                loop {
                    let Some(&ch) = b.get(i) else {
                        return Err(unterminated("an unterminated quote", start));
                    };
                    if ch == 0 {
                        return Err(DdlError::Syntax("a NUL byte".into()));
                    }
                    if escapes && ch == b'\\' {
                        let next = *b
                            .get(i + 1)
                            .ok_or_else(|| unterminated("an unterminated quote", start))?;
                        value.push(next);
                        i += 2;
                        continue;
                    }
                    if ch == quote {
                        if b.get(i + 1) == Some(&quote) {
                            value.push(quote);
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    value.push(ch);
                    i += 1;
                }
                let kind = if quote == b'`' || (quote == b'"' && mode.ansi_quotes) {
                    Kind::Quoted
                } else {
                    Kind::Str
                };
                out.push(Token {
                    kind,
                    start,
                    end: i,
                    value: String::from_utf8_lossy(&value).into_owned(),
                });
            }
            b'@' => {
                if b.get(i + 1) == Some(&b'@') {
                    i += 2;
                    while i < b.len() && (word_byte(b[i]) || b[i] == b'.') {
                        i += 1;
                    }
                    out.push(Token {
                        kind: Kind::SysVar,
                        start,
                        end: i,
                        value: sql[start + 2..i].to_ascii_lowercase(),
                    });
                } else if b.get(i + 1).is_some_and(|&n| word_byte(n)) {
                    i += 1;
                    while i < b.len() && (word_byte(b[i]) || b[i] == b'.') {
                        i += 1;
                    }
                    out.push(Token {
                        kind: Kind::Var,
                        start,
                        end: i,
                        value: sql[start + 1..i].to_string(),
                    });
                } else {
                    // `user`@`host`, or @'quoted variable': the quote
                    // that follows is its own token.
                    i += 1;
                    out.push(punct(sql, start, i));
                }
            }
            b'0'..=b'9' | b'.' if c != b'.' || b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (end, number) = number_end(b, i);
                if number {
                    out.push(Token {
                        kind: Kind::Number,
                        start,
                        end,
                        value: sql[start..end].to_string(),
                    });
                    i = end;
                } else if c == b'.' {
                    i += 1;
                    out.push(punct(sql, start, i));
                } else {
                    i = word_end(b, i);
                    out.push(word(sql, start, i));
                }
            }
            _ if word_byte(c) => {
                i = word_end(b, i);
                out.push(word(sql, start, i));
            }
            _ => {
                // One character (a multi-byte one whole).
                let len = sql[i..].chars().next().map_or(1, char::len_utf8);
                i += len;
                out.push(punct(sql, start, i));
            }
        }
    }
    Ok(out)
}

fn word(sql: &str, start: usize, end: usize) -> Token {
    Token {
        kind: Kind::Word,
        start,
        end,
        value: sql[start..end].to_string(),
    }
}

fn punct(sql: &str, start: usize, end: usize) -> Token {
    Token {
        kind: Kind::Punct,
        start,
        end,
        value: sql[start..end].to_string(),
    }
}

fn word_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && word_byte(b[i]) {
        i += 1;
    }
    i
}

/// Where a number starting at `i` ends, and whether it is one (`1abc` is
/// a name: MariaDB names may start with a digit).
fn number_end(b: &[u8], start: usize) -> (usize, bool) {
    let mut i = start;
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X' | b'b' | b'B')) {
        let hex = matches!(b[i + 1], b'x' | b'X');
        let mut j = i + 2;
        while j < b.len()
            && (if hex {
                b[j].is_ascii_hexdigit()
            } else {
                b[j] == b'0' || b[j] == b'1'
            })
        {
            j += 1;
        }
        if j > i + 2 && !b.get(j).is_some_and(|&n| word_byte(n)) {
            return (j, true);
        }
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let number = !b.get(i).is_some_and(|&n| word_byte(n));
    (i, number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Kind, String)> {
        lex(sql, Mode::default())
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, t.value))
            .collect()
    }

    #[test]
    fn strings_identifiers_and_comments() {
        let t = kinds("SELECT 'a''b\\'c', `x``y`, \"q\" -- c\n# c\n/* c */ 1.5e3, 0x1F, 1abc");
        assert_eq!(
            t,
            vec![
                (Kind::Word, "SELECT".into()),
                (Kind::Str, "a'b'c".into()),
                (Kind::Punct, ",".into()),
                (Kind::Quoted, "x`y".into()),
                (Kind::Punct, ",".into()),
                (Kind::Str, "q".into()),
                (Kind::Number, "1.5e3".into()),
                (Kind::Punct, ",".into()),
                (Kind::Number, "0x1F".into()),
                (Kind::Punct, ",".into()),
                (Kind::Word, "1abc".into()),
            ]
        );
    }

    #[test]
    fn versioned_comments_are_code() {
        let t = kinds("/*!50003 DROP TABLE x */ /*M!100100 GRANT */");
        let words: Vec<String> = t.into_iter().map(|(_, v)| v).collect();
        assert_eq!(words, ["DROP", "TABLE", "x", "GRANT"]);
    }

    #[test]
    fn modes_change_quotes_and_escapes() {
        let ansi = Mode::from_sql_mode("ANSI_QUOTES,NO_BACKSLASH_ESCAPES");
        let t = lex(r#""a" 'b\' 'c'"#, ansi).unwrap();
        assert_eq!(t[0].kind, Kind::Quoted);
        assert_eq!(t[1].value, "b\\");
        assert_eq!(t[2].value, "c");
        // Without NO_BACKSLASH_ESCAPES the same text leaves a quote open.
        assert!(lex(r"'b\' 'c'", Mode::default()).is_err());
    }

    #[test]
    fn variables_and_definers() {
        let t = kinds("DEFINER=`root`@`localhost` @x @@GLOBAL.general_log @'q'");
        assert_eq!(t[2], (Kind::Quoted, "root".into()));
        assert_eq!(t[3], (Kind::Punct, "@".into()));
        assert_eq!(t[4], (Kind::Quoted, "localhost".into()));
        assert_eq!(t[5], (Kind::Var, "x".into()));
        assert_eq!(t[6], (Kind::SysVar, "global.general_log".into()));
    }

    #[test]
    fn unterminated_things_are_refused() {
        for bad in ["'abc", "`abc", "/* x", "a\0b", "'a\\"] {
            assert!(lex(bad, Mode::default()).is_err(), "{bad:?}");
        }
    }
}
