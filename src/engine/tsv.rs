//! Rows as LOAD DATA text: the server's defaults (`FIELDS TERMINATED BY
//! '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'`), NULL as `\N`.
//!
//! Values travel as the server's own text for each type and as raw bytes
//! for binary and text columns alike (the dump connection uses `SET NAMES
//! binary`, the load uses `CHARACTER SET binary`), so no character set
//! conversion happens anywhere and every value comes back byte for byte.

use mysql::consts::ColumnType;

use crate::db::wire::Row;

/// Appends bytes with the four characters LOAD DATA needs escaped.
///
/// Most values have none of them, so the scan looks at 16 bytes at a
/// time: a mask of the bytes that may need escaping (at most `\n`, or a
/// backslash: two comparisons the compiler turns into vector code), then
/// only those bytes; the last few bytes, and short values whole, go one
/// by one. The dump spent a tenth of its time here byte by byte, and 1.6
/// times less than that again word by word; a tail padded into a block
/// cost a stalled load per value (the padding is stored byte by byte and
/// read back as a vector), a third more than this on integer columns.
pub fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    let mut blocks = bytes.chunks_exact(16);
    let mut base = 0;
    for block in &mut blocks {
        let mut mask = candidates(block.try_into().expect("16 bytes"));
        while mask != 0 {
            let i = base + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            escape_at(out, bytes, i, &mut start);
        }
        base += 16;
    }
    for (i, &b) in blocks.remainder().iter().enumerate() {
        if may_need_escaping(b) {
            escape_at(out, bytes, base + i, &mut start);
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

#[inline]
fn may_need_escaping(b: u8) -> bool {
    (b <= b'\n') | (b == b'\\')
}

/// Bit `i` set where `block[i]` may need escaping (`\0` to `\n`, `\\`).
fn candidates(block: &[u8; 16]) -> u16 {
    block.iter().enumerate().fold(0, |mask, (i, &b)| {
        mask | (u16::from(may_need_escaping(b)) << i)
    })
}

/// Escapes `bytes[i]` if it needs it: what came since `start` first.
#[inline]
fn escape_at(out: &mut Vec<u8>, bytes: &[u8], i: usize, start: &mut usize) {
    let esc: &[u8] = match bytes[i] {
        b'\\' => b"\\\\",
        b'\t' => b"\\t",
        b'\n' => b"\\n",
        0 => b"\\0",
        _ => return,
    };
    out.extend_from_slice(&bytes[*start..i]);
    out.extend_from_slice(esc);
    *start = i + 1;
}

/// Whether the server's text for a column of this type never holds a byte
/// LOAD DATA escapes: numbers, dates and times are digits and `-.:+ e`.
/// The dump copies such values as they come, unscanned (a third of its
/// escaping time went to integer columns that never have anything to
/// escape). Decided from the result set's own column types, so a column
/// altered after the copy's tables were read is still escaped if it needs.
pub fn is_plain(column_type: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        column_type,
        MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_DECIMAL
            | MYSQL_TYPE_NEWDECIMAL
            | MYSQL_TYPE_FLOAT
            | MYSQL_TYPE_DOUBLE
            | MYSQL_TYPE_YEAR
            | MYSQL_TYPE_DATE
            | MYSQL_TYPE_NEWDATE
            | MYSQL_TYPE_TIME
            | MYSQL_TYPE_TIME2
            | MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_TIMESTAMP2
    )
}

/// Appends a whole row, tab-separated, newline-terminated, copying the
/// values of the columns marked `plain` ([`is_plain`]; none if empty)
/// without scanning them.
pub fn push_row(out: &mut Vec<u8>, row: Row<'_>, plain: &[bool]) {
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match cell {
            None => out.extend_from_slice(b"\\N"),
            Some(bytes) if plain.get(i) == Some(&true) => {
                debug_assert!(!bytes.iter().any(|&b| may_need_escaping(b)));
                out.extend_from_slice(bytes);
            }
            Some(bytes) => push_escaped(out, bytes),
        }
    }
    out.push(b'\n');
}

/// Appends a row read back ([`parse_rows`]) as text again.
pub fn push_cells(out: &mut Vec<u8>, row: &[Cell]) {
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match cell {
            None => out.extend_from_slice(b"\\N"),
            Some(bytes) => push_escaped(out, bytes),
        }
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
    Some(unescape_field(field))
}

/// One field's bytes with the escapes undone (NULL, `\N`, is the caller's).
pub fn unescape_field(field: &[u8]) -> Vec<u8> {
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_at_a_time_scan_escapes_like_the_byte_at_a_time_one() {
        let naive = |bytes: &[u8]| {
            let mut out = Vec::new();
            for &b in bytes {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    0 => out.extend_from_slice(b"\\0"),
                    _ => out.push(b),
                }
            }
            out
        };
        // Every special byte at every position of values up to 80 bytes
        // (two blocks and a tail), among bytes that are near them in value.
        for len in 0..80 {
            for at in 0..len {
                for special in [b'\\', b'\t', b'\n', 0, 0x80, 0xff, 1, b'[', b']'] {
                    let mut v: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                    v[at] = special;
                    if at + 1 < len {
                        v[at + 1] = 0x0b;
                    }
                    let mut out = Vec::new();
                    push_escaped(&mut out, &v);
                    assert_eq!(out, naive(&v), "{v:?}");
                }
            }
        }
        // Every byte value, specials side by side, across block edges.
        let all: Vec<u8> = (0..=255u8)
            .chain((0..=255u8).rev())
            .cycle()
            .take(1000)
            .collect();
        let mut out = Vec::new();
        push_escaped(&mut out, &all);
        assert_eq!(out, naive(&all));
    }

    /// Pushes a row of `cells` as the dump's readers hand it over.
    fn push(out: &mut Vec<u8>, cells: &[Option<&[u8]>], plain: &[bool]) {
        let mut data = Vec::new();
        let spans: Vec<crate::db::wire::Span> = cells
            .iter()
            .map(|c| {
                c.map(|b| {
                    data.extend_from_slice(b);
                    (data.len() - b.len(), data.len())
                })
            })
            .collect();
        push_row(out, Row::new(&data, &spans), plain);
    }

    const AWKWARD: [Option<&[u8]>; 6] = [
        None,
        Some(b""),
        Some(b"NULL"),
        Some(b"a\tb\nc\\d\0e\rf"),
        Some(b"\\N"),
        Some(&[0xff, 0xfe]),
    ];

    #[test]
    fn rows_read_back_byte_for_byte() {
        let mut text = Vec::new();
        push(&mut text, &AWKWARD, &[]);
        push(&mut text, &[Some(b"")], &[]);
        let rows = parse_rows(&text);
        assert_eq!(rows.len(), 2);
        let expected: Vec<Cell> = AWKWARD.iter().map(|c| c.map(<[u8]>::to_vec)).collect();
        assert_eq!(rows[0], expected);
        assert_eq!(rows[1], vec![Some(Vec::new())]);
        assert!(parse_rows(b"").is_empty());
    }

    #[test]
    fn plain_columns_come_out_as_scanned_ones_and_only_numbers_are_plain() {
        use ColumnType::*;
        let row: [Option<&[u8]>; 6] = [
            Some(b"-42"),
            Some(b"2026-12-02 03:00:00.000001"),
            None,
            Some(b"-838:59:59"),
            Some(b"1.5e+20"),
            Some(b"a\tb"),
        ];
        let (mut plain, mut scanned) = (Vec::new(), Vec::new());
        push(&mut plain, &row, &[true, true, true, true, true, false]);
        push(&mut scanned, &row, &[]);
        assert_eq!(plain, scanned);
        for t in [
            MYSQL_TYPE_LONGLONG,
            MYSQL_TYPE_NEWDECIMAL,
            MYSQL_TYPE_DATETIME2,
        ] {
            assert!(is_plain(t), "{t:?}");
        }
        // Bytes as stored, or text: any byte may come.
        for t in [
            MYSQL_TYPE_VAR_STRING,
            MYSQL_TYPE_STRING,
            MYSQL_TYPE_BLOB,
            MYSQL_TYPE_BIT,
            MYSQL_TYPE_ENUM,
            MYSQL_TYPE_SET,
            MYSQL_TYPE_JSON,
            MYSQL_TYPE_GEOMETRY,
        ] {
            assert!(!is_plain(t), "{t:?}");
        }
    }

    #[test]
    fn escapes_exactly_what_load_data_needs() {
        let mut out = Vec::new();
        push(&mut out, &AWKWARD, &[]);
        assert_eq!(
            out,
            b"\\N\t\tNULL\ta\\tb\\nc\\\\d\\0e\rf\t\\\\N\t\xff\xfe\n"
        );
        assert_eq!(count_rows(&out), 1);
    }
}
