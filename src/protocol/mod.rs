//! The panel protocol: one request in, exactly one XML document out.
//!
//! Everything that knows about PARAM_* variables or XML lives here; the db,
//! engine and runner layers never see either. The path of one call:
//!
//! 1. [`Request::parse`] reads the environment and stdin (bad input becomes
//!    a typed error at once, before anything else happens);
//! 2. the function is looked up in the registry the caller gives
//!    (`functions::FUNCTIONS`) and the
//!    caller's AUTH_LEVEL checked against its access;
//! 3. the handler runs (a panic is caught) and returns a [`Reply`];
//! 4. [`response::render`] appends the reply to the incoming document, or
//!    [`response::render_error`] appends a typed, localized `<error>`;
//! 5. [`emit`] writes the finished document to stdout in one piece.
//!
//! An error that is not a [`PanelError`] is shown as `type="internal"` and
//! its full chain goes to the log, never to stdout.

pub mod error;
pub mod messages;
pub mod naming;
pub mod registry;
pub mod request;
pub mod response;

use std::panic::{self, AssertUnwindSafe};

pub use error::{ErrorKind, PanelError};
pub use messages::Lang;
pub use request::{Incoming, Mode, Paging, Request};
pub use response::{Form, ListPage, RedirectKind, Reply, Row, Slist};

use crate::config::Config;
use crate::context::Ctx;
use crate::logging;
use crate::xml::Element;
use registry::{Access, Function};

/// Runs one call against `registry` (the caller's: `functions::FUNCTIONS`)
/// and returns the document to print.
pub fn handle(registry: &[Function], incoming: Incoming, config: &Config) -> Element {
    let parsed = Request::parse(&incoming);
    // The raw bytes are not needed once parsed: a large request is not
    // held twice.
    drop(incoming);
    let mut req = match parsed {
        Ok(req) => req,
        Err(rejected) => {
            let func = rejected.func.unwrap_or_default();
            logging::set_function(&func);
            log::warn!("request refused: {}", rejected.error);
            return response::render_error(None, &func, rejected.lang, &rejected.error);
        }
    };
    logging::set_function(req.func());
    let outcome = run(registry, &req, config);
    // The answer is built on the incoming document itself (moved, not
    // copied: a large document is held once).
    let (func, lang) = (req.func().to_string(), req.lang());
    let doc = req.take_doc();
    match outcome {
        Ok(Reply::Redirect(kind, target)) if naming::is_companion(&func) => {
            // Called by its companion name: so is where it sends the user.
            let ours = |f: &str| registry.iter().any(|r| r.name == f);
            let target = naming::redirect_target(&target, ours);
            response::render(doc, &func, lang, &Reply::Redirect(kind, target))
        }
        Ok(reply) => response::render(doc, &func, lang, &reply),
        Err(error) => response::render_error(doc, &func, lang, &error),
    }
}

/// Finds the function, checks the caller's level and runs it; every
/// failure is a [`PanelError`] (anything untyped becomes `internal`, its
/// detail logged).
fn run(registry: &[Function], req: &Request, config: &Config) -> Result<Reply, PanelError> {
    // Either name: the BILLmanager one, or the companion one.
    let name = naming::canonical(req.func());
    let Some(function) = registry.iter().find(|f| f.name == name) else {
        let error = PanelError::new(ErrorKind::UnknownFunc, "func", req.func());
        log::warn!("{error}");
        return Err(error);
    };
    let allowed = match function.access {
        Access::Admin => req.level().is_some_and(|l| l >= config.admin_level),
    };
    if !allowed {
        log::warn!(
            "access refused to user {:?} at level {:?}",
            req.user().unwrap_or(""),
            req.level()
        );
        return Err(PanelError::access(function.name));
    }

    let mut ctx = Ctx::new(config);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| (function.run)(req, &mut ctx)));
    match outcome {
        Ok(Ok(reply)) => Ok(reply),
        // `anyhow::Error::downcast_ref` finds a PanelError both as the root
        // cause and as a context layer (a chain item would be the wrapper).
        Ok(Err(err)) => match error::panel_error(&err) {
            Some(panel) => {
                if matches!(panel.kind, ErrorKind::Db | ErrorKind::Internal) {
                    log::error!("{err:#}");
                } else {
                    log::info!("{err:#}");
                }
                Err(panel)
            }
            None => {
                log::error!("{err:#}");
                Err(PanelError::new(ErrorKind::Internal, req.func(), ""))
            }
        },
        Err(_) => {
            // The panic hook has logged the message and location.
            Err(PanelError::new(ErrorKind::Internal, req.func(), ""))
        }
    }
}

/// Sends panics to the log instead of stderr's default report, so the panel
/// sees only the document. Installed once by the binary.
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        log::error!("panic: {info}");
    }));
}

/// Writes the document to stdout in one piece. The only writer to stdout
/// in panel mode.
pub fn emit(doc: &Element) -> std::io::Result<()> {
    // The tree is complete before the first byte goes out, so a failure
    // cannot leave half a document; it is streamed, not copied whole.
    // The one writer of stdout in panel mode.
    #[allow(clippy::disallowed_methods)]
    let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    doc.write_document(out)
}

#[cfg(test)]
mod tests {
    use super::registry::{Function, Kind};
    use super::*;
    use std::collections::BTreeMap;

    fn panics(_: &Request, _: &mut Ctx<'_>) -> anyhow::Result<Reply> {
        panic!("boom")
    }

    fn fails(_: &Request, _: &mut Ctx<'_>) -> anyhow::Result<Reply> {
        Err(anyhow::anyhow!("disk on fire")).map_err(|e| e.context("while listing"))
    }

    fn typed(_: &Request, _: &mut Ctx<'_>) -> anyhow::Result<Reply> {
        let e: anyhow::Error = PanelError::missed("runningoperation", 7).into();
        Err(e.context("looking up operation 7"))
    }

    fn typed_context(_: &Request, _: &mut Ctx<'_>) -> anyhow::Result<Reply> {
        Err(anyhow::anyhow!("connection refused"))
            .map_err(|e| e.context("cannot connect"))
            .map_err(|e| e.context(PanelError::new(ErrorKind::Db, "database", "")))
            .map_err(|e| e.context("opening the database"))
    }

    const REGISTRY: &[Function] = &[
        Function {
            name: "t.context",
            access: Access::Admin,
            kind: Kind::Action,
            run: typed_context,
        },
        Function {
            name: "t.panic",
            access: Access::Admin,
            kind: Kind::Action,
            run: panics,
        },
        Function {
            name: "t.fail",
            access: Access::Admin,
            kind: Kind::Action,
            run: fails,
        },
        Function {
            name: "t.typed",
            access: Access::Admin,
            kind: Kind::Action,
            run: typed,
        },
    ];

    fn call(func: &str) -> Element {
        let config = Config::load(
            Some(std::path::Path::new("/nonexistent")),
            None,
            &BTreeMap::new(),
        )
        .unwrap();
        let env = [("PARAM_func", func), ("AUTH_LEVEL", "29")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let doc = handle(
            REGISTRY,
            Incoming {
                env,
                stdin: Vec::new(),
                whole_lists: false,
            },
            &config,
        );
        // Whatever happened, the document must survive a round trip.
        Element::parse(&doc.to_document()).unwrap()
    }

    #[test]
    fn a_panic_becomes_an_internal_error_document() {
        let doc = call("t.panic");
        let err = doc.find("error").unwrap();
        assert_eq!(err.get_attr("type"), Some("internal"));
        assert!(!doc.to_document().contains("boom"));
    }

    #[test]
    fn an_untyped_failure_is_internal_and_keeps_its_detail_out_of_the_document() {
        let doc = call("t.fail");
        assert_eq!(
            doc.find("error").unwrap().get_attr("type"),
            Some("internal")
        );
        assert!(!doc.to_document().contains("disk on fire"));
    }

    #[test]
    fn a_typed_error_attached_as_context_is_found() {
        let doc = call("t.context");
        assert_eq!(doc.find("error").unwrap().get_attr("type"), Some("db"));
        assert!(!doc.to_document().contains("refused"));
    }

    #[test]
    fn a_typed_error_is_found_under_context() {
        let doc = call("t.typed");
        let err = doc.find("error").unwrap();
        assert_eq!(err.get_attr("type"), Some("missed"));
        assert_eq!(err.get_attr("object"), Some("runningoperation"));
    }
}
