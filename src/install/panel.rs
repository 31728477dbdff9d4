//! Telling the panel that its manifests changed: its caches rebuilt the
//! way real plugins do it (`sbin/xmlinstall --meta-cache` and
//! `--lang-cache`, when the panel has that program), `var/.xmlcache`
//! cleared, and a restart asked for (`mgrctl -m billmgr exit`; it starts
//! again on the next request).

use std::fs;
use std::path::Path;
use std::process::Command;

use super::Report;

/// Makes the panel read the manifests again.
pub(super) fn reload_panel(mgrdir: &Path, report: &mut Report) {
    let cache = mgrdir.join("var/.xmlcache");
    if let Ok(entries) = fs::read_dir(&cache) {
        let mut cleared = 0;
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let removed = if path.is_dir() && !path.is_symlink() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match removed {
                Ok(()) => cleared += 1,
                Err(e) => report
                    .notices
                    .push(format!("could not clear {}: {e}", path.display())),
            }
        }
        if cleared > 0 {
            report.change("cleared the panel's XML cache", &cache);
        }
    }
    rebuild_caches(mgrdir, report);
    let mgrctl = mgrdir.join("sbin/mgrctl");
    if !mgrctl.exists() {
        report.notices.push(format!(
            "{} not found: restart the panel yourself to load the new menus",
            mgrctl.display()
        ));
        return;
    }
    match Command::new(&mgrctl)
        .args(["-m", "billmgr", "exit"])
        .output()
    {
        Ok(out) if out.status.success() => report
            .changed
            .push("asked the panel to reload (mgrctl -m billmgr exit)".into()),
        Ok(out) => report.notices.push(format!(
            "`mgrctl -m billmgr exit` failed ({}): {}; restart the panel yourself",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => report.notices.push(format!(
            "could not run {}: {e}; restart the panel yourself",
            mgrctl.display()
        )),
    }
}

/// `xmlinstall -m billmgr --meta-cache --apply`, then the language caches
/// (`--lang-cache ru --base en --apply`), as a public BILLmanager plugin's
/// deploy does; skipped (with a notice) where the panel has no xmlinstall.
fn rebuild_caches(mgrdir: &Path, report: &mut Report) {
    let xmlinstall = mgrdir.join("sbin/xmlinstall");
    if !xmlinstall.exists() {
        report.notices.push(format!(
            "{} not found: the panel's metadata and language caches were not rebuilt",
            xmlinstall.display()
        ));
        return;
    }
    let runs: [&[&str]; 2] = [
        &["-m", "billmgr", "--meta-cache", "--apply"],
        &[
            "-m",
            "billmgr",
            "--lang-cache",
            "ru",
            "--base",
            "en",
            "--apply",
        ],
    ];
    for args in runs {
        let shown = format!("xmlinstall {}", args.join(" "));
        match Command::new(&xmlinstall).args(args).output() {
            Ok(out) if out.status.success() => report
                .changed
                .push(format!("rebuilt the panel's caches ({shown})")),
            Ok(out) => report.notices.push(format!(
                "`{shown}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => report.notices.push(format!("could not run {shown}: {e}")),
        }
    }
}
