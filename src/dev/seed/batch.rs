//! Rows sent as multi-row INSERTs of about a megabyte, and the values
//! they hold, escaped for a session without NO_BACKSLASH_ESCAPES.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use crate::clock;
use crate::db::{quote_ident, Db};

/// Accumulates rows of one table and sends them as multi-row INSERTs of
/// about a megabyte.
pub(super) struct Batch {
    pub table: &'static str,
    columns: &'static str,
    sql: String,
    rows: u64,
    pub total: u64,
}

const BATCH_BYTES: usize = 1 << 20;

impl Batch {
    pub fn new(table: &'static str, columns: &'static str) -> Self {
        Batch {
            table,
            columns,
            sql: String::new(),
            rows: 0,
            total: 0,
        }
    }

    pub fn add(&mut self, db: &mut Db, values: &[V]) -> Result<()> {
        if self.sql.is_empty() {
            self.sql = format!(
                "INSERT INTO {} ({}) VALUES ",
                quote_ident(self.table),
                self.columns
            );
        } else {
            self.sql.push(',');
        }
        self.sql.push('(');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.sql.push(',');
            }
            v.write(&mut self.sql);
        }
        self.sql.push(')');
        self.rows += 1;
        if self.sql.len() >= BATCH_BYTES {
            self.flush(db)?;
        }
        Ok(())
    }

    pub fn flush(&mut self, db: &mut Db) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let sql = std::mem::take(&mut self.sql);
        db.conn()
            .query_drop(sql)
            .with_context(|| format!("failed to insert into {}", self.table))?;
        self.total += self.rows;
        self.rows = 0;
        Ok(())
    }
}

/// A value for a generated row.
#[derive(Clone)]
pub(super) enum V {
    Null,
    Int(i64),
    Text(String),
    /// A decimal, as text in cents/hundredths.
    Money(i64),
    Date(i64),
    DateTime(i64),
}

impl V {
    pub fn s(text: impl Into<String>) -> V {
        V::Text(text.into())
    }

    fn write(&self, out: &mut String) {
        match self {
            V::Null => out.push_str("NULL"),
            V::Int(i) => out.push_str(&i.to_string()),
            V::Money(c) => {
                let sign = if *c < 0 { "-" } else { "" };
                out.push_str(&format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100));
            }
            V::Date(t) => {
                out.push('\'');
                out.push_str(&clock::utc_datetime(*t)[..10]);
                out.push('\'');
            }
            V::DateTime(t) => {
                out.push('\'');
                out.push_str(&clock::utc_datetime(*t));
                out.push('\'');
            }
            V::Text(s) => {
                // The session runs without NO_BACKSLASH_ESCAPES (set in run()).
                out.push('\'');
                for c in s.chars() {
                    match c {
                        '\'' => out.push_str("\\'"),
                        '\\' => out.push_str("\\\\"),
                        '\0' => out.push_str("\\0"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\u{1a}' => out.push_str("\\Z"),
                        c => out.push(c),
                    }
                }
                out.push('\'');
            }
        }
    }
}
