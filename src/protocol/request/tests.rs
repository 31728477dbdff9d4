use super::*;

fn incoming(env: &[(&str, &str)], stdin: &str) -> Incoming {
    Incoming {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        stdin: stdin.as_bytes().to_vec(),
        whole_lists: false,
    }
}

#[test]
fn func_comes_from_param_then_action_then_doc() {
    let r = Request::parse(&incoming(
        &[("PARAM_func", "a"), ("ACTION_NAME", "b")],
        "<doc func=\"c\"/>",
    ))
    .unwrap();
    assert_eq!(r.func(), "a");
    let r = Request::parse(&incoming(&[("ACTION_NAME", "b")], "<doc func=\"c\"/>")).unwrap();
    assert_eq!(r.func(), "b");
    let r = Request::parse(&incoming(&[], "<doc func=\"c\"/>")).unwrap();
    assert_eq!(r.func(), "c");
}

#[test]
fn tparams_fill_missing_params_only() {
    let r = Request::parse(&incoming(
        &[("PARAM_elid", "5")],
        "<doc><tparams><elid>6</elid><plid>9</plid></tparams></doc>",
    ))
    .unwrap();
    assert_eq!(r.param("elid"), Some("5"));
    assert_eq!(r.param("plid"), Some("9"));
}

#[test]
fn language_precedence() {
    let cookie = ("HTTP_COOKIE", "billmgrses5=abc; billmgrlang5=billmgr:ru");
    let r = Request::parse(&incoming(&[cookie], "")).unwrap();
    assert_eq!(r.lang(), Lang::Ru);
    let r = Request::parse(&incoming(&[cookie], "<doc lang=\"en\"/>")).unwrap();
    assert_eq!(r.lang(), Lang::En);
    let r = Request::parse(&incoming(
        &[cookie, ("PARAM_lang", "en")],
        "<doc lang=\"ru\"/>",
    ))
    .unwrap();
    assert_eq!(r.lang(), Lang::En);
    let r = Request::parse(&incoming(&[], "")).unwrap();
    assert_eq!(r.lang(), Lang::En);
}

#[test]
fn elids_split_on_comma_space() {
    let r = Request::parse(&incoming(&[("PARAM_elid", "3, 7, 3")], "")).unwrap();
    assert_eq!(r.elids().unwrap(), vec![3, 7]);
    for bad in ["3,7", "3, x", "-1", "0", "1 OR 1=1", "99999999999999999999"] {
        let r = Request::parse(&incoming(&[("PARAM_elid", bad)], "")).unwrap();
        let e = r.elids().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Value, "{bad}");
        assert_eq!(e.object, "elid");
    }
    let r = Request::parse(&incoming(&[], "")).unwrap();
    assert_eq!(r.elid().unwrap_err().kind, ErrorKind::Empty);
}

#[test]
fn modes() {
    let mode = |env: &[(&str, &str)]| Request::parse(&incoming(env, "")).unwrap().mode();
    assert_eq!(mode(&[]), Mode::View);
    assert_eq!(mode(&[("PARAM_sok", "")]), Mode::View);
    assert_eq!(mode(&[("PARAM_sv_field", "x")]), Mode::SetValues);
    assert_eq!(mode(&[("PARAM_sok", "ok")]), Mode::SubmitNew);
    assert_eq!(
        mode(&[("PARAM_sok", "ok"), ("PARAM_elid", "4")]),
        Mode::SubmitEdit
    );
}

#[test]
fn bad_input_is_rejected_with_a_type() {
    let big = "x".repeat(MAX_STDIN + 1);
    let e = Request::parse(&incoming(&[], &big)).unwrap_err();
    assert_eq!(e.error.kind, ErrorKind::TooLarge);
    let e = Request::parse(&incoming(&[("PARAM_lang", "ru")], "<doc")).unwrap_err();
    assert_eq!((e.error.kind, e.lang), (ErrorKind::Xml, Lang::Ru));
    let long = "y".repeat(MAX_VALUE + 1);
    let e = Request::parse(&incoming(&[("PARAM_comment", &long)], "")).unwrap_err();
    assert_eq!(
        (e.error.kind, e.error.object.as_str()),
        (ErrorKind::TooLong, "comment")
    );
    let e = Request::parse(&incoming(&[("AUTH_LEVEL", "admin")], "")).unwrap_err();
    assert_eq!(e.error.kind, ErrorKind::Value);
}

#[test]
fn typed_accessors() {
    let r = Request::parse(&incoming(
        &[
            ("PARAM_d", "2026-11-23"),
            ("PARAM_bad", "2026-13-01"),
            ("PARAM_c", "on"),
            ("PARAM_t", "абв"),
            ("PARAM_i", "12"),
        ],
        "",
    ))
    .unwrap();
    assert_eq!(r.date("d").unwrap(), Some("2026-11-23"));
    assert_eq!(r.date("bad").unwrap_err().kind, ErrorKind::Value);
    assert_eq!(r.date("none").unwrap(), None);
    assert_eq!(r.choice("c", &["on", "off"]).unwrap(), Some("on"));
    assert_eq!(r.choice("c", &["off"]).unwrap_err().kind, ErrorKind::Value);
    assert_eq!(r.text("t", 3).unwrap(), "абв");
    assert_eq!(r.text("t", 2).unwrap_err().kind, ErrorKind::TooLong);
    assert_eq!(r.opt_id("i").unwrap(), Some(12));
    assert_eq!(r.opt_id("t").unwrap_err().kind, ErrorKind::Value);
}

#[test]
fn paging_is_validated() {
    let cols = ["id", "cdate"];
    let p = |env: &[(&str, &str)]| Request::parse(&incoming(env, "")).unwrap().paging(&cols);
    assert_eq!(
        p(&[
            ("PARAM_p_num", "2"),
            ("PARAM_p_cnt", "5"),
            ("PARAM_p_sort", "cdate"),
            ("PARAM_p_order", "desc")
        ])
        .unwrap(),
        Paging {
            page: 2,
            count: 5,
            sort: Some("cdate".into()),
            descending: true,
            whole: false,
            given: vec!["p_num", "p_cnt", "p_sort", "p_order"],
        }
    );
    assert!(p(&[("PARAM_p_sort", "-id")]).unwrap().descending);
    assert_eq!(
        p(&[("PARAM_p_sort", "id; DROP TABLE x")]).unwrap_err().kind,
        ErrorKind::Value
    );
    assert_eq!(
        p(&[("PARAM_p_cnt", "0")]).unwrap_err().kind,
        ErrorKind::Value
    );
    assert_eq!(
        p(&[("PARAM_p_num", "abc")]).unwrap_err().kind,
        ErrorKind::Value
    );
    assert_eq!(
        p(&[("PARAM_p_order", "sideways")]).unwrap_err().kind,
        ErrorKind::Value
    );
}
