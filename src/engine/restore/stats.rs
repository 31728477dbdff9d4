//! Table statistics while a copy loads.
//!
//! InnoDB recalculates a table's persistent statistics in the background
//! each time a tenth of its rows changed since the last time, so a table
//! filled from empty is analysed again and again as it grows: measured
//! on the seed benchmark shape, 40 % of the server's CPU during a restore
//! (15.9–16.7 s of 37–39 s; the restore took 19.7–20.8 s with it and
//! 12.6–12.8 s without). So each staged table loads with
//! `STATS_AUTO_RECALC=0`, then gets its own setting back (an instant
//! change of metadata) and its statistics computed once (`ANALYZE TABLE`;
//! MariaDB 10.11's instant `ALTER` computes them as well, the `ANALYZE`
//! does not count on it), before it is swapped in: the restored table is
//! defined as the copy says and the optimizer knows its size from the
//! first query.
//!
//! Best effort: a table whose setting cannot be changed instantly (MySQL
//! changes it in place only) loads as it is, and is analysed once after
//! all the same; the statistics are the engine's own (not MariaDB's
//! engine-independent ones, which need a full scan).

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use crate::db::quote_ident;

/// A table's `STATS_AUTO_RECALC` as created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recalc {
    /// Not set: the server's `innodb_stats_auto_recalc` decides.
    Default,
    On,
    Off,
}

impl Recalc {
    /// The setting in a table's `CREATE_OPTIONS` (`information_schema`).
    fn of_options(options: &str) -> Recalc {
        options
            .split_whitespace()
            .find_map(|o| o.strip_prefix("stats_auto_recalc="))
            .map_or(Recalc::Default, |v| match v {
                "0" => Recalc::Off,
                "1" => Recalc::On,
                _ => Recalc::Default,
            })
    }

    fn sql(self) -> &'static str {
        match self {
            Recalc::Default => "DEFAULT",
            Recalc::On => "1",
            Recalc::Off => "0",
        }
    }
}

/// The staged tables whose recalculation is paused, with their setting.
#[derive(Debug, Default)]
pub(super) struct Paused {
    /// Every staged table, with its own setting when it was paused.
    tables: Vec<(String, Option<Recalc>)>,
}

fn alter(conn: &mut Conn, table: &str, recalc: Recalc) -> Result<()> {
    conn.query_drop(format!(
        "ALTER TABLE {} STATS_AUTO_RECALC = {}, ALGORITHM = INSTANT",
        quote_ident(table),
        recalc.sql()
    ))
    .map_err(Into::into)
}

/// Turns off the recalculation of the staged tables whose names start
/// with `prefix` (all just created, empty).
pub(super) fn pause(conn: &mut Conn, prefix: &str) -> Result<Paused> {
    let tables: Vec<(String, Option<String>)> = conn
        .exec(
            "SELECT TABLE_NAME, CREATE_OPTIONS FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME LIKE ?",
            (format!("{}%", prefix.replace('_', "\\_")),),
        )
        .context("failed to read the staged tables")?;
    let mut paused = Paused::default();
    for (table, options) in tables {
        let recalc = Recalc::of_options(options.as_deref().unwrap_or(""));
        match alter(conn, &table, Recalc::Off) {
            Ok(()) => paused.tables.push((table, Some(recalc))),
            Err(e) => {
                // MySQL changes the setting in place, not instantly.
                log::debug!("`{table}` loads with its statistics recalculated: {e:#}");
                paused.tables.push((table, None));
            }
        }
    }
    Ok(paused)
}

/// Gives every paused table its own setting back and computes every
/// table's statistics once (also one that was not paused: the server's
/// own recalculation runs in the background and may not have come yet).
/// A table that cannot get its setting back fails the restore (it would
/// differ from the copy); statistics that cannot be computed are only a
/// warning.
pub(super) fn resume(conn: &mut Conn, paused: Paused) -> Result<()> {
    // MariaDB's engine-independent statistics only where asked for
    // (a server kind without the variable does not have them).
    let _ = conn.query_drop("SET SESSION use_stat_tables = 'PREFERABLY_FOR_QUERIES'");
    for (table, recalc) in paused.tables {
        if let Some(recalc) = recalc {
            alter(conn, &table, recalc)
                .with_context(|| format!("failed to set `{table}`'s STATS_AUTO_RECALC back"))?;
        }
        let name = quote_ident(&table);
        let outcome: Result<Vec<(String, String, String, String)>, _> =
            conn.query(format!("ANALYZE TABLE {name}"));
        match outcome {
            Ok(rows) => {
                for (_, _, kind, text) in rows {
                    if kind.eq_ignore_ascii_case("error") {
                        log::warn!("statistics of `{table}` not computed: {text}");
                    }
                }
            }
            Err(e) => log::warn!("statistics of `{table}` not computed: {e:#}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_read_from_the_create_options() {
        for (options, want) in [
            ("", Recalc::Default),
            ("partitioned", Recalc::Default),
            ("stats_auto_recalc=0", Recalc::Off),
            ("row_format=DYNAMIC stats_auto_recalc=1", Recalc::On),
            ("stats_persistent=0", Recalc::Default),
            ("stats_auto_recalc=2", Recalc::Default),
        ] {
            assert_eq!(Recalc::of_options(options), want, "{options:?}");
        }
        assert_eq!(
            [Recalc::Default, Recalc::On, Recalc::Off].map(Recalc::sql),
            ["DEFAULT", "1", "0"]
        );
    }
}
