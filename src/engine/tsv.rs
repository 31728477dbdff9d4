//! Rows as LOAD DATA text: the server's defaults (`FIELDS TERMINATED BY
//! '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'`), NULL as `\N`.
//!
//! Values travel as the server's own text for each type and as raw bytes
//! for binary and text columns alike (the dump connection uses `SET NAMES
//! binary`, the load uses `CHARACTER SET binary`), so no character set
//! conversion happens anywhere and every value comes back byte for byte.

use mysql::Value;

/// Appends one value to a row.
pub fn push_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::NULL => out.extend_from_slice(b"\\N"),
        Value::Bytes(bytes) => push_escaped(out, bytes),
        // The text protocol sends everything as bytes; these arms only
        // matter if a caller passes typed values.
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::UInt(u) => out.extend_from_slice(u.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(f.to_string().as_bytes()),
        Value::Double(d) => out.extend_from_slice(d.to_string().as_bytes()),
        other => push_escaped(out, other.as_sql(true).trim_matches('\'').as_bytes()),
    }
}

/// Appends bytes with the four characters LOAD DATA needs escaped.
pub fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0 => b"\\0",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends a whole row, tab-separated, newline-terminated.
pub fn push_row(out: &mut Vec<u8>, row: &[Value]) {
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        push_value(out, v);
    }
    out.push(b'\n');
}

/// Rows in a text chunk: its newlines (values' own newlines are escaped).
pub fn count_rows(text: &[u8]) -> u64 {
    text.iter().filter(|&&b| b == b'\n').count() as u64
}

/// One value read back: `None` for SQL NULL, else the raw bytes.
pub type Cell = Option<Vec<u8>>;

/// Reads a text chunk back into rows of cells: the inverse of
/// [`push_row`] (per-object restore reads rows this way, where a whole
/// table goes through LOAD DATA instead).
pub fn parse_rows(text: &[u8]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    let count = count_rows(text);
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() && rows.len() as u64 == count {
            break;
        }
        rows.push(line.split(|&b| b == b'\t').map(unescape).collect());
    }
    rows
}

fn unescape(field: &[u8]) -> Cell {
    if field == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'0') => out.push(0),
            Some(&other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_byte_for_byte() {
        let values = [
            Value::NULL,
            Value::Bytes(b"".to_vec()),
            Value::Bytes(b"NULL".to_vec()),
            Value::Bytes(b"a\tb\nc\\d\0e\rf".to_vec()),
            Value::Bytes(b"\\N".to_vec()),
            Value::Bytes(vec![0xff, 0xfe]),
        ];
        let mut text = Vec::new();
        push_row(&mut text, &values);
        push_row(&mut text, &[Value::Bytes(b"".to_vec())]);
        let rows = parse_rows(&text);
        assert_eq!(rows.len(), 2);
        let expected: Vec<Cell> = values
            .iter()
            .map(|v| match v {
                Value::Bytes(b) => Some(b.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(rows[0], expected);
        assert_eq!(rows[1], vec![Some(Vec::new())]);
        assert!(parse_rows(b"").is_empty());
    }

    #[test]
    fn escapes_exactly_what_load_data_needs() {
        let mut out = Vec::new();
        push_row(
            &mut out,
            &[
                Value::NULL,
                Value::Bytes(b"".to_vec()),
                Value::Bytes(b"NULL".to_vec()),
                Value::Bytes(b"a\tb\nc\\d\0e\rf".to_vec()),
                Value::Bytes(b"\\N".to_vec()),
                Value::Bytes(vec![0xff, 0xfe]),
            ],
        );
        assert_eq!(
            out,
            b"\\N\t\tNULL\ta\\tb\\nc\\\\d\\0e\rf\t\\\\N\t\xff\xfe\n"
        );
        assert_eq!(count_rows(&out), 1);
    }
}
