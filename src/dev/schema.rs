//! The BILLmanager-compatible schema of etc/sql/billmgr.sql, applied to a
//! database.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use crate::db::Db;

/// etc/sql/billmgr.sql, compiled in.
pub const BILLMGR_SQL: &str = include_str!("../../etc/sql/billmgr.sql");

/// The statements of an SQL file: `;`-terminated, `--` comment lines dropped.
pub fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The table names the schema creates, in creation order.
pub fn tables() -> Vec<String> {
    statements(BILLMGR_SQL)
        .iter()
        .filter_map(|s| {
            s.strip_prefix("CREATE TABLE IF NOT EXISTS ")
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        })
        .collect()
}

/// Creates the tables that are missing.
pub fn apply(db: &mut Db) -> Result<()> {
    for sql in statements(BILLMGR_SQL) {
        db.conn()
            .query_drop(&sql)
            .with_context(|| format!("failed to apply schema statement: {}", first_line(&sql)))?;
    }
    Ok(())
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_the_tables_the_plugin_uses() {
        let tables = tables();
        for t in [
            "account",
            "user",
            "itemtype",
            "pricelist",
            "item",
            "itemparam",
            "processingmodule",
            "processingparam",
            "runningoperation",
            "task",
            "payment",
        ] {
            assert!(tables.iter().any(|x| x == t), "missing {t}");
        }
        assert!(tables
            .iter()
            .all(|t| !t.starts_with(crate::db::TABLE_PREFIX)));
    }
}
