//! A value from a row event made into the parameter the staged table's
//! column takes: the log writes what the server stores (a `TIMESTAMP` as
//! seconds since 1970, an unsigned integer as its signed bits where the
//! log does not say it is unsigned, a `SET` as its bitmask, a `BIT` as
//! big-endian bytes), and the statement needs what a client would send.

use anyhow::{Context, Result};
use mysql::binlog::value::BinlogValue;
use mysql::prelude::Queryable;
use mysql::{Conn, Value};

/// A column of a staged table, as replay needs it.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    /// `DATA_TYPE`: `int`, `timestamp`, `set`, …
    pub data_type: String,
    pub unsigned: bool,
    /// Computed by the server: never given a value.
    pub generated: bool,
}

/// The columns of `table` in `database`, in order.
pub fn columns(conn: &mut Conn, database: &str, table: &str) -> Result<Vec<Column>> {
    let rows: Vec<(String, String, String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, EXTRA FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        .with_context(|| format!("cannot read the columns of `{table}`"))?;
    Ok(rows
        .into_iter()
        .map(|(name, data_type, column_type, extra)| {
            let extra = extra.to_ascii_uppercase();
            Column {
                name,
                data_type: data_type.to_ascii_lowercase(),
                unsigned: column_type.to_ascii_lowercase().contains("unsigned"),
                // MySQL writes DEFAULT_GENERATED for an expression default;
                // only VIRTUAL/STORED GENERATED are computed columns.
                generated: extra.contains("VIRTUAL")
                    || extra.contains("STORED")
                    || extra.contains("PERSISTENT"),
            }
        })
        .collect())
}

/// Where the statement takes a column's value: MySQL makes a JSON value
/// only from text of a character set, and replay's connection sends bytes
/// as they are (`binary`).
pub fn placeholder(column: &Column) -> &'static str {
    if column.data_type == "json" {
        "CONVERT(? USING utf8mb4)"
    } else {
        "?"
    }
}

/// The parameter for `value` in `column`.
pub fn param(value: BinlogValue<'_>, column: &Column) -> Result<Value> {
    let value = Value::try_from(value)
        .with_context(|| format!("column `{}`: a value replay cannot read", column.name))?;
    Ok(match (column.data_type.as_str(), value) {
        ("timestamp", Value::Bytes(b)) => {
            let text = String::from_utf8_lossy(&b);
            Value::Bytes(timestamp_text(&text)?.into_bytes())
        }
        ("timestamp", Value::Int(secs)) => {
            Value::Bytes(timestamp_text(&secs.to_string())?.into_bytes())
        }
        ("year", Value::Bytes(b)) if b == b"1900" => Value::Int(0),
        ("set", Value::Bytes(b)) => Value::UInt(le_bits(&b)),
        ("bit", Value::Bytes(b)) => Value::UInt(be_bits(&b)),
        (_, Value::Int(v)) if column.unsigned && v < 0 => {
            Value::UInt(unsigned(v, &column.data_type))
        }
        (_, v) => v,
    })
}

/// Seconds since 1970 (`"123"` or `"123.456000"`) as a UTC date and time;
/// 0 is the zero timestamp.
fn timestamp_text(text: &str) -> Result<String> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs
        .parse()
        .with_context(|| format!("a timestamp of `{text}`"))?;
    if secs == 0 && frac.trim_matches('0').is_empty() {
        return Ok("0000-00-00 00:00:00".into());
    }
    let base = crate::clock::utc_datetime(secs);
    Ok(if frac.is_empty() {
        base
    } else {
        format!("{base}.{frac}")
    })
}

fn le_bits(b: &[u8]) -> u64 {
    b.iter()
        .take(8)
        .rev()
        .fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

fn be_bits(b: &[u8]) -> u64 {
    b.iter()
        .rev()
        .take(8)
        .rev()
        .fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

/// A signed integer's bits read as the unsigned type the column is.
fn unsigned(v: i64, data_type: &str) -> u64 {
    let bits = match data_type {
        "tinyint" => 8,
        "smallint" => 16,
        "mediumint" => 24,
        "int" | "integer" => 32,
        _ => 64,
    };
    if bits == 64 {
        v as u64
    } else {
        (v as u64) & ((1u64 << bits) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, unsigned: bool) -> Column {
        Column {
            name: "c".into(),
            data_type: data_type.into(),
            unsigned,
            generated: false,
        }
    }

    #[test]
    fn stored_forms_become_what_a_client_sends() {
        let v = |x: Value| BinlogValue::Value(x);
        assert_eq!(
            param(
                v(Value::Bytes(b"1796673447".to_vec())),
                &col("timestamp", false)
            )
            .unwrap(),
            Value::Bytes(b"2026-12-07 19:57:27".to_vec())
        );
        assert_eq!(
            param(v(Value::Bytes(b"0".to_vec())), &col("timestamp", false)).unwrap(),
            Value::Bytes(b"0000-00-00 00:00:00".to_vec())
        );
        assert_eq!(
            param(
                v(Value::Bytes(b"1.250000".to_vec())),
                &col("timestamp", false)
            )
            .unwrap(),
            Value::Bytes(b"1970-01-01 00:00:01.250000".to_vec())
        );
        assert_eq!(
            param(v(Value::Int(-1)), &col("bigint", true)).unwrap(),
            Value::UInt(u64::MAX)
        );
        assert_eq!(
            param(v(Value::Int(-1)), &col("int", true)).unwrap(),
            Value::UInt(u32::MAX as u64)
        );
        assert_eq!(
            param(v(Value::Int(-1)), &col("tinyint", false)).unwrap(),
            Value::Int(-1)
        );
        assert_eq!(
            param(v(Value::Bytes(vec![5, 1])), &col("set", false)).unwrap(),
            Value::UInt(261)
        );
        assert_eq!(
            param(v(Value::Bytes(vec![1, 0])), &col("bit", false)).unwrap(),
            Value::UInt(256)
        );
    }
}
