//! Loading a table by multi-row `INSERT`s, for servers where `LOAD DATA
//! LOCAL INFILE` is off (`local_infile` is OFF by default on MySQL 8.0 and
//! later; turning it on needs SUPER or SYSTEM_VARIABLES_ADMIN, which the
//! panel's account lacks).
//!
//! The chunks are the same `LOAD DATA` text ([`crate::engine::tsv`]); each
//! row becomes a tuple of binary string literals, with the same meaning
//! `LOAD DATA ... CHARACTER SET binary` gives the bytes: `\N` is NULL,
//! anything else the column's bytes as they were read. A JSON column
//! refuses a binary string, so its value is converted to utf8mb4 first.
//! Nothing read from the copy is SQL: every byte of a value is written
//! inside a quoted literal, with `\`, `'` and NUL escaped.

use anyhow::{bail, Result};

/// The most a statement holds before it is sent; well under any server's
/// `max_allowed_packet` (16 MiB on MariaDB 10.x, 64 MiB on MySQL 8).
pub(super) const STATEMENT_BYTES: usize = 4 << 20;

/// How one column's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Literal {
    /// `_binary'...'`.
    Binary,
    /// `CONVERT(_binary'...' USING utf8mb4)` (JSON).
    Utf8,
}

impl Literal {
    /// From `information_schema.COLUMNS.DATA_TYPE`.
    pub(super) fn of(data_type: &str) -> Literal {
        if data_type.eq_ignore_ascii_case("json") {
            Literal::Utf8
        } else {
            Literal::Binary
        }
    }
}

/// Builds `INSERT` statements for one table from its chunks' text.
pub(super) struct Inserts {
    head: String,
    literals: Vec<Literal>,
    statement: String,
    rows_in_statement: usize,
}

impl Inserts {
    /// `table` and `columns` are quoted identifiers.
    pub(super) fn new(table: &str, columns: &str, literals: Vec<Literal>) -> Inserts {
        Inserts {
            head: format!("INSERT INTO {table} ({columns}) VALUES "),
            literals,
            statement: String::with_capacity(STATEMENT_BYTES + (64 << 10)),
            rows_in_statement: 0,
        }
    }

    /// Adds the rows of one chunk (whole rows, each ending in `\n`),
    /// calling `send` with every statement that is full.
    pub(super) fn add_chunk(
        &mut self,
        text: &[u8],
        send: &mut dyn FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        let mut rest = text;
        while !rest.is_empty() {
            let end = row_end(rest)?;
            self.add_row(&rest[..end])?;
            rest = &rest[end + 1..];
            if self.statement.len() >= STATEMENT_BYTES {
                self.flush(send)?;
            }
        }
        Ok(())
    }

    /// Sends what is left.
    pub(super) fn flush(&mut self, send: &mut dyn FnMut(&str) -> Result<()>) -> Result<()> {
        if self.rows_in_statement > 0 {
            send(&self.statement)?;
        }
        self.statement.clear();
        self.rows_in_statement = 0;
        Ok(())
    }

    fn add_row(&mut self, row: &[u8]) -> Result<()> {
        if self.rows_in_statement == 0 {
            self.statement.push_str(&self.head);
        } else {
            self.statement.push(',');
        }
        self.statement.push('(');
        let mut fields = 0;
        for field in split_fields(row) {
            let Some(&literal) = self.literals.get(fields) else {
                bail!(
                    "a row has more fields than the table's {} columns",
                    self.literals.len()
                );
            };
            if fields > 0 {
                self.statement.push(',');
            }
            write_value(&mut self.statement, field, literal)?;
            fields += 1;
        }
        if fields != self.literals.len() {
            bail!(
                "a row has {fields} fields; the table has {} columns",
                self.literals.len()
            );
        }
        self.statement.push(')');
        self.rows_in_statement += 1;
        Ok(())
    }
}

/// Where the first row of `text` ends: its unescaped `\n`.
fn row_end(text: &[u8]) -> Result<usize> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'\n' => return Ok(i),
            _ => i += 1,
        }
    }
    bail!("a chunk ends inside a row")
}

/// The fields of one row: split at unescaped tabs.
fn split_fields(row: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while i < row.len() {
            match row[i] {
                b'\\' => i += 2,
                b'\t' => {
                    let field = &row[start..i];
                    i += 1;
                    start = i;
                    return Some(field);
                }
                _ => i += 1,
            }
        }
        done = true;
        Some(&row[start.min(row.len())..])
    })
}

/// Writes one field as a SQL value: `NULL` for `\N`, else the unescaped
/// bytes as a quoted binary literal, or in hex (`X'..'`, also a binary
/// string) when they are not UTF-8, so every statement is valid UTF-8.
fn write_value(out: &mut String, field: &[u8], literal: Literal) -> Result<()> {
    if field == b"\\N" {
        out.push_str("NULL");
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        bytes.push(match field[i] {
            b'\\' => {
                i += 1;
                match field.get(i) {
                    Some(b'0') => 0,
                    Some(b'b') => 8,
                    Some(b'n') => b'\n',
                    Some(b'r') => b'\r',
                    Some(b't') => b'\t',
                    Some(b'Z') => 26,
                    Some(&other) => other,
                    None => bail!("a field ends in a lone backslash"),
                }
            }
            b => b,
        });
        i += 1;
    }
    if literal == Literal::Utf8 {
        out.push_str("CONVERT(");
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => {
            out.push_str("_binary'");
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '\0' => out.push_str("\\0"),
                    c => out.push(c),
                }
            }
            out.push('\'');
        }
        Err(_) => {
            out.push_str("X'");
            out.push_str(&hex::encode(&bytes));
            out.push('\'');
        }
    }
    if literal == Literal::Utf8 {
        out.push_str(" USING utf8mb4)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements(text: &[u8], literals: Vec<Literal>) -> Vec<String> {
        let mut out = Vec::new();
        let mut ins = Inserts::new("`t`", "`a`, `b`", literals);
        let mut send = |s: &str| {
            out.push(s.to_string());
            Ok(())
        };
        ins.add_chunk(text, &mut send).unwrap();
        ins.flush(&mut send).unwrap();
        out
    }

    #[test]
    fn rows_become_one_statement_of_binary_literals() {
        let got = statements(
            b"1\ta\\tb\\nc\\\\d\\0e'f\n\\N\t\\\\N\n2\t\n",
            vec![Literal::Binary, Literal::Binary],
        );
        assert_eq!(
            got,
            vec![
                "INSERT INTO `t` (`a`, `b`) VALUES (_binary'1',_binary'a\tb\nc\\\\d\\0e\\'f'),\
                 (NULL,_binary'\\\\N'),(_binary'2',_binary'')"
            ]
        );
    }

    #[test]
    fn json_is_converted_and_a_wrong_row_is_refused() {
        let got = statements(b"1\t{\"k\": 1}\n", vec![Literal::Binary, Literal::Utf8]);
        assert_eq!(
            got,
            vec!["INSERT INTO `t` (`a`, `b`) VALUES (_binary'1',CONVERT(_binary'{\"k\": 1}' USING utf8mb4))"]
        );
        let mut ins = Inserts::new("`t`", "`a`, `b`", vec![Literal::Binary; 2]);
        let mut send = |_: &str| Ok(());
        assert!(ins.add_chunk(b"1\n", &mut send).is_err(), "too few fields");
        assert!(ins.add_chunk(b"1\t2\t3\n", &mut send).is_err(), "too many");
        assert!(ins.add_chunk(b"1\t2", &mut send).is_err(), "no row end");
        assert!(
            ins.add_chunk(b"1\t2\\", &mut send).is_err(),
            "lone backslash"
        );
        // Bytes that are not UTF-8 go in hex.
        let got = statements(b"1\t\xff\\0\n", vec![Literal::Binary; 2]);
        assert_eq!(
            got,
            vec!["INSERT INTO `t` (`a`, `b`) VALUES (_binary'1',X'ff00')"]
        );
    }

    #[test]
    fn a_long_table_is_cut_into_statements_of_whole_rows() {
        let row = format!("1\t{}\n", "x".repeat(1000));
        let text = row.repeat(STATEMENT_BYTES / 1000 * 2);
        let got = statements(text.as_bytes(), vec![Literal::Binary; 2]);
        assert!(got.len() >= 2, "{}", got.len());
        let rows: usize = got.iter().map(|s| s.matches("(_binary'1'").count()).sum();
        assert_eq!(rows, STATEMENT_BYTES / 1000 * 2);
        assert!(got.iter().all(|s| s.ends_with(')')));
    }
}
