//! Saved rows read from a restore's staged tables (a copy loaded and the
//! binary log replayed into them, not applied), for restoring one object
//! as it was at a second through the same path as from a copy.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::super::format::TableEntry;
use super::super::tsv::Cell;
use super::pick::RowSource;
use crate::db::quote_ident;

/// Keys asked for in one statement.
const KEYS_PER_QUERY: usize = 1000;

/// The staged tables of a restore, read as a copy's rows are: the text of
/// each value (the dump's own form), `NULL` as none.
pub struct StagedRows<'a> {
    conn: &'a mut Conn,
    staged_of: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> StagedRows<'a> {
    pub fn new(
        conn: &'a mut Conn,
        staged_of: &'a dyn Fn(&str) -> Option<String>,
    ) -> Result<StagedRows<'a>> {
        // As the dump reads: raw bytes, UTC.
        conn.query_drop("SET SESSION character_set_results = binary, time_zone = '+00:00'")?;
        Ok(StagedRows { conn, staged_of })
    }
}

impl RowSource for StagedRows<'_> {
    fn each_row_where(
        &mut self,
        table: &TableEntry,
        column: &str,
        keys: &BTreeSet<i64>,
        each: &mut dyn FnMut(Vec<Cell>) -> Result<()>,
    ) -> Result<()> {
        anyhow::ensure!(
            table.columns.iter().any(|c| c == column),
            "table `{}` has no column `{column}`",
            table.name
        );
        let staged = (self.staged_of)(&table.name)
            .with_context(|| format!("`{}` was not staged", table.name))?;
        let columns = table
            .columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let keys: Vec<i64> = keys.iter().copied().collect();
        for part in keys.chunks(KEYS_PER_QUERY) {
            let list = part
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let rows: Vec<mysql::Row> = self
                .conn
                .query(format!(
                    "SELECT {columns} FROM {} WHERE {} IN ({list})",
                    quote_ident(&staged),
                    quote_ident(column)
                ))
                .with_context(|| format!("failed to read staged `{}`", table.name))?;
            for row in rows {
                let cells = row
                    .unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql::Value::NULL => None,
                        mysql::Value::Bytes(b) => Some(b),
                        other => Some(other.as_sql(true).trim_matches('\'').as_bytes().to_vec()),
                    })
                    .collect();
                each(cells)?;
            }
        }
        Ok(())
    }

    fn bytes_read(&self) -> u64 {
        0
    }
}
