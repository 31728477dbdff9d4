//! Checking a copy without touching the database: every entry of the
//! archive is read from the storage and compared with the listing (path,
//! offset, size, SHA-256), every chunk is decompressed and its text checked
//! (size, SHA-256, row count), and the archive as a whole against the size
//! and SHA-256 recorded beside it.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use sha2::Digest;

use super::archive::Copy;
use super::archive::{self, check_entry, HashingReader, ReadEntry};
use super::format::{self, names, Entry, Listing};
use super::tsv;

/// What a verification found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub chunks: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Checks a decompressed chunk's text against the listing.
pub fn check_chunk(table: &str, chunk: &format::Chunk, compressed: &[u8]) -> Result<Vec<u8>> {
    let text =
        zstd::bulk::decompress(compressed, chunk.text_size as usize + 1).with_context(|| {
            format!(
                "chunk `{}` of `{table}` does not decompress",
                chunk.entry.path
            )
        })?;
    anyhow::ensure!(
        text.len() as u64 == chunk.text_size
            && (chunk.text_sha256.is_empty() || archive::sha256_hex(&text) == chunk.text_sha256),
        "chunk `{}` of `{table}` decompresses to other data than was copied",
        chunk.entry.path
    );
    let rows = tsv::count_rows(&text);
    anyhow::ensure!(
        rows == chunk.rows,
        "chunk `{}` of `{table}` holds {rows} rows, the listing says {}",
        chunk.entry.path,
        chunk.rows
    );
    Ok(text)
}

/// An entry the listing names, and for a data chunk its table and chunk.
type Expected<'a> = (&'a Entry, Option<(&'a str, &'a format::Chunk)>);

/// Verifies a copy against `listing` (as stored beside its archive).
pub fn verify(copy: &Copy<'_>, listing: &Listing) -> Result<VerifyReport> {
    verify_with_progress(copy, listing, &mut |_, _| {})
}

/// [`verify`], telling `progress` the share of entries checked so far.
pub fn verify_with_progress(
    copy: &Copy<'_>,
    listing: &Listing,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<VerifyReport> {
    let summary = listing
        .archive
        .as_ref()
        .context("the listing does not name its archive")?;
    // Every entry the listing names, by path.
    let mut expected: HashMap<&str, Expected<'_>> = HashMap::new();
    for t in &listing.tables {
        expected.insert(&t.schema_entry.path, (&t.schema_entry, None));
        for c in &t.chunks {
            expected.insert(&c.entry.path, (&c.entry, Some((t.name.as_str(), c))));
        }
        for b in t.keys.values().flatten() {
            expected.insert(&b.entry.path, (&b.entry, None));
        }
    }
    for d in &listing.definitions {
        expected.insert(&d.entry.path, (&d.entry, None));
    }
    for f in &listing.files {
        expected.insert(&f.entry.path, (&f.entry, None));
    }
    if let Some(e) = &listing.objects {
        expected.insert(&e.path, (e, None));
    }
    let mut report = VerifyReport::default();
    let mut seen = 0usize;
    let mut inner_listing = None;
    let mut reader = HashingReader::new(copy.open()?);
    archive::read_entries(&mut reader, |entry: ReadEntry| {
        report.entries += 1;
        if entry.path == names::LISTING_ENTRY {
            inner_listing = Some(entry.data);
            return Ok(());
        }
        if entry.path == names::FORMAT_ENTRY {
            return Ok(());
        }
        let Some((want, chunk)) = expected.get(entry.path.as_str()) else {
            bail!(
                "the archive holds `{}`, which the listing does not name",
                entry.path
            );
        };
        check_entry(want, &entry)?;
        seen += 1;
        progress("verify", (seen * 100 / expected.len().max(1)) as u32);
        if let Some((table, chunk)) = chunk {
            check_chunk(table, chunk, &entry.data)?;
            report.chunks += 1;
            report.rows += chunk.rows;
        }
        Ok(())
    })?;
    // Read to the end so the whole object is hashed (tar padding).
    std::io::copy(&mut reader, &mut std::io::sink())?;
    anyhow::ensure!(
        seen == expected.len(),
        "the archive lacks {} entries the listing names",
        expected.len() - seen
    );
    let inner = inner_listing.context("the archive has no listing.json")?;
    let inner_listing = Listing::from_json(&inner)?;
    let mut beside = listing.clone();
    beside.archive = None;
    // An uploaded copy may be stored otherwise encrypted than it was made.
    beside.encryption = inner_listing.encryption;
    anyhow::ensure!(
        inner_listing == beside,
        "the listing inside the archive differs from the one beside it"
    );
    let sum: String = reader
        .hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    anyhow::ensure!(
        reader.read == summary.size && sum == summary.sha256,
        "the archive is {} bytes with SHA-256 {sum}; the listing recorded {} bytes, {}",
        reader.read,
        summary.size,
        summary.sha256
    );
    report.bytes = reader.read;
    Ok(report)
}
