//! Asking a processing module for information rather than work: its
//! features, and the address of the control panel of a service's server.

use std::time::Duration;

use anyhow::Result;

use super::attempt::command_for;
use crate::config::Config;
use crate::db::operations::{self, Operation};
use crate::db::Db;
use crate::xml::Element;

/// How long a module may take to answer a question.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// Processing parameters that hold a server's panel address, in the order
/// they are tried.
const URL_PARAMS: &[&str] = &["panel_url", "url", "base_url", "baseurl", "location"];

/// Runs the module with `--command <command>` (plus the operation's item and
/// module) and parses its stdout; `None` when it fails or prints no XML.
fn ask(config: &Config, op: &Operation, command: &str) -> Option<Element> {
    let mut cmd = command_for(config, op).ok()?;
    cmd.args[1] = command.to_string();
    cmd.args.truncate(6); // --command X --item N --module M
    let result = cmd.run(ASK_TIMEOUT, 1 << 20, |_| {}, || false);
    if !result.exited_ok() {
        log::warn!("`{cmd}` failed: {}", result.ending_text());
        return None;
    }
    Element::parse(result.stdout.text().trim()).ok()
}

/// The address of the control panel of the server behind operation `op`:
/// from the module's `transition_control_panel` command when its features
/// list it, else from the module's configured URL parameter.
pub fn control_panel_url(config: &Config, db: &mut Db, op: &Operation) -> Result<Option<String>> {
    let Some((module, _)) = op.module else {
        return Ok(None);
    };
    let has_feature = ask(config, op, "features").is_some_and(|doc| {
        doc.find("features").is_some_and(|f| {
            f.find_all("feature")
                .any(|x| x.get_attr("name") == Some("transition_control_panel"))
        })
    });
    if has_feature {
        if let Some(url) = ask(config, op, "transition_control_panel")
            .and_then(|doc| doc.find("url").map(|u| u.text_content().trim().to_string()))
            .filter(|u| !u.is_empty())
        {
            return Ok(Some(url));
        }
    }
    for name in URL_PARAMS {
        if let Some(v) = operations::module_param(db, module, name)? {
            let v = v.trim();
            return Ok(Some(if v.contains("://") {
                v.to_string()
            } else {
                format!("https://{v}")
            }));
        }
    }
    Ok(None)
}
