use super::*;

const HEADER: &str = r#"{"kind":"run","version":1,"name":"resnet18","block_names":["stem","layer1.0"],"param_names":["conv1.weight","fc.bias"],"num_params":12,"dataset":"synthetic","batch":8,"lr":0.1}"#;

fn step_line(step: u64) -> String {
    format!(
        r#"{{"kind":"step","step":{step},"loss":2.5,"acc":0.125,"lr":0.1,"blocks":[{{"name":"stem","grad_norm":0.5,"grad_rms":0.1,"act_mean":0.2,"act_std":1.0,"act_zero_frac":0.5,"dead_frac":0.0}},{{"name":"layer1.0","grad_norm":0.25,"grad_rms":0.05,"grad_norm_shortcut":0.3,"grad_norm_branch":0.4,"cos":-0.5,"act_mean":0.3,"act_std":0.9,"act_zero_frac":0.4,"dead_frac":0.25}}],"params":[{{"grad_norm":1.5,"weight_norm":3.0,"update_ratio":0.01}},{{"grad_norm":0.5,"weight_norm":1.0,"update_ratio":0.02}}]}}"#
    )
}

fn parse(lines: &[&str]) -> Result<Vec<Item>, StreamError> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    for l in lines {
        out.extend(p.line_bytes(l.as_bytes())?);
    }
    Ok(out)
}

#[test]
fn header_and_steps_become_records() {
    let s1 = step_line(1);
    let items = parse(&[HEADER, "", &s1]).unwrap();
    let Item::Run(h) = &items[0] else {
        panic!("{items:?}")
    };
    assert_eq!(h.info.spec, "resnet18");
    assert_eq!(h.info.block_names, ["stem", "layer1.0"]);
    assert_eq!(h.info.num_params, 12);
    assert_eq!((h.batch, h.lr), (Some(8), Some(0.1)));
    let Item::Step(s) = &items[1] else {
        panic!("{items:?}")
    };
    let r = &s.record;
    assert_eq!((r.step, r.loss, r.acc), (1, 2.5, 0.125));
    assert_eq!(r.blocks[0].split, None);
    assert_eq!(
        r.blocks[1].split,
        Some(Eq5 {
            shortcut: 0.3,
            branch: 0.4,
            cos: -0.5
        })
    );
    assert_eq!((r.blocks[1].grad_rms, r.blocks[1].dead_frac), (0.05, 0.25));
    assert_eq!(r.param_grad_norms, [1.5, 0.5]);
    assert_eq!(r.update_ratios, [0.01, 0.02]);
    assert_eq!(s.weight_norms, [3.0, 1.0]);
}

#[test]
fn null_is_a_diverged_number_and_missing_ratios_are_empty() {
    let line = step_line(3)
        .replace(r#""loss":2.5"#, r#""loss":null"#)
        .replace(r#","update_ratio":0.02"#, "");
    let items = parse(&[HEADER, &line]).unwrap();
    let Item::Step(s) = &items[1] else { panic!() };
    assert!(s.record.loss.is_nan());
    assert!(s.record.update_ratios.is_empty(), "one missing: none kept");
    assert_eq!(s.weight_norms.len(), 2);
}

/// Every malformed input is one error naming its line, of the expected kind.
#[test]
fn bad_input_is_one_clear_error() {
    let s1 = step_line(1);
    let s2 = step_line(2);
    let cut = &s1[..s1.len() / 2];
    let case = |lines: &[&str]| parse(lines).unwrap_err();
    assert_eq!(case(&[HEADER, cut]), StreamError::Truncated { line: 2 });
    assert!(matches!(case(&[&s1]), StreamError::NoHeader { line: 1 }));
    assert!(matches!(
        case(&[HEADER, HEADER]),
        StreamError::SecondHeader { line: 2 }
    ));
    let newer = HEADER.replace(r#""version":1"#, r#""version":7"#);
    let e = case(&[&newer]);
    assert!(
        matches!(e, StreamError::NewerVersion { found: 7, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade resviz"), "{e}");
    let unknown = s1.replace(r#""kind":"step""#, r#""kind":"evaluation""#);
    assert!(matches!(
        case(&[HEADER, &unknown]),
        StreamError::UnknownKind { line: 2, .. }
    ));
    let field = s1.replace(r#""acc":0.125"#, r#""accuracy":0.125"#);
    let e = case(&[HEADER, &field]);
    assert!(e.to_string().contains("accuracy"), "{e}");
    let one_block = s1.replacen(r#"{"name":"stem""#, r#"{"name":"x""#, 1);
    assert!(matches!(
        case(&[HEADER, &one_block]),
        StreamError::BlockName { index: 0, .. }
    ));
    let three_params = s1.replace(r#""params":["#, r#""params":[{"grad_norm":1},"#);
    let e = case(&[HEADER, &three_params]);
    assert!(
        matches!(
            e,
            StreamError::Count {
                what: "params",
                found: 3,
                expected: 2,
                ..
            }
        ),
        "{e}"
    );
    let no_block = s1.replace(r#",{"name":"layer1.0""#, r#"],"x":[{"name":"layer1.0""#);
    assert!(parse(&[HEADER, &no_block]).is_err());
    assert!(matches!(
        case(&[HEADER, &s2, &s1]),
        StreamError::Order { line: 3, .. }
    ));
    let negative = s1.replace(r#""grad_norm":0.25"#, r#""grad_norm":-0.25"#);
    let e = case(&[HEADER, &negative]);
    assert!(e.to_string().contains("grad_norm of layer1.0"), "{e}");
    assert!(matches!(
        case(&["not json"]),
        StreamError::Json { line: 1, .. }
    ));
    assert!(matches!(
        case(&["[1, 2]"]),
        StreamError::Json { line: 1, .. }
    ));
    let escape = HEADER.replace("resnet18", "\\u001b[2J");
    let Item::Run(h) = &parse(&[&escape]).unwrap()[0] else {
        panic!()
    };
    assert!(!h.info.spec.contains('\u{1b}'), "{:?}", h.info.spec);
    for e in [
        case(&[HEADER, cut]),
        case(&[&newer]),
        case(&[HEADER, &negative]),
    ] {
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}

#[test]
fn read_all_wants_whole_lines() {
    let text = format!("{HEADER}\n{}\n{}\n", step_line(1), step_line(2));
    let (h, steps) = read_all(text.as_bytes()).unwrap();
    assert_eq!(h.info.spec, "resnet18");
    assert_eq!(steps.len(), 2);
    // Cut inside the last line, even at a place where the JSON happens to close.
    let cut = &text[..text.len() - 1];
    let e = read_all(cut.as_bytes()).unwrap_err();
    assert!(
        matches!(e, ReadError::Stream(StreamError::Truncated { line: 3 })),
        "{e}"
    );
    assert!(matches!(read_all(&b""[..]).unwrap_err(), ReadError::Empty));
    assert!(matches!(
        read_all(&b"\xff\xfe\n"[..]).unwrap_err(),
        ReadError::Stream(StreamError::NotText { line: 1 })
    ));
}

/// A header whose parameters name a stem conv and one block's two convs, so the growth of both
/// boundaries is defined: ‖W‖ at attach 2 (stem) and √(3² + 4²) = 5 (the block).
const GROWTH_HEADER: &str = r#"{"kind":"run","version":1,"name":"net","block_names":["stem","layer1.0"],"param_names":["stem.conv.weight","layer1.0.conv1.weight","layer1.0.conv2.weight","fc.bias"],"init_weight_norms":[2.0,3.0,4.0,1.0]}"#;

fn growth_step(norms: [f32; 4]) -> String {
    let block = |name: &str| {
        format!(
            r#"{{"name":"{name}","grad_norm":0.5,"act_mean":0.2,"act_std":1.0,"act_zero_frac":0.5}}"#
        )
    };
    let params: Vec<String> = norms
        .iter()
        .map(|w| format!(r#"{{"grad_norm":1.0,"weight_norm":{w}}}"#))
        .collect();
    format!(
        r#"{{"kind":"step","step":1,"loss":2.0,"blocks":[{},{}],"params":[{}]}}"#,
        block("stem"),
        block("layer1.0"),
        params.join(",")
    )
}

/// Issue 28: a header's initial norms become the run's `init_weight_norms`, so the growth of
/// each boundary's convs is ‖W_t‖/‖W_0‖ as for a run trained here.
#[test]
fn initial_norms_in_the_header_give_the_growth() {
    let step = growth_step([4.0, 6.0, 8.0, 1.0]);
    let items = parse(&[GROWTH_HEADER, &step]).unwrap();
    let (Item::Run(h), Item::Step(s)) = (&items[0], &items[1]) else {
        panic!("{items:?}")
    };
    assert_eq!(h.info.init_weight_norms, [2.0, 3.0, 4.0, 1.0]);
    let init = learning::init_norms(&h.info);
    assert_eq!(init, [Some(2.0), Some(5.0)]);
    let growth = learning::growth(&s.record.blocks, &init);
    let close = |g: Option<f64>, want: f64| g.is_some_and(|g| (g - want).abs() < 1e-6);
    assert!(close(growth[0], 2.0) && close(growth[1], 2.0), "{growth:?}");
    // Through `convert`, as `resviz import` builds the snapshot's run.
    let run = convert::history(h, [s.clone()]);
    assert_eq!(run.info.init_weight_norms, h.info.init_weight_norms);
}

/// Streams written before the field keep loading, with the growth unknown; a `null` entry is
/// one unknown tensor; a list of the wrong length or a negative norm is refused.
#[test]
fn initial_norms_are_optional_and_checked() {
    let old = GROWTH_HEADER.replace(r#","init_weight_norms":[2.0,3.0,4.0,1.0]"#, "");
    let step = growth_step([4.0, 6.0, 8.0, 1.0]);
    let items = parse(&[&old, &step]).unwrap();
    let Item::Run(h) = &items[0] else { panic!() };
    assert!(h.info.init_weight_norms.is_empty());
    assert_eq!(learning::init_norms(&h.info), [None, None]);
    let Item::Step(s) = &items[1] else { panic!() };
    assert!(
        learning::growth(&s.record.blocks, &learning::init_norms(&h.info))
            .iter()
            .all(Option::is_none)
    );

    let null = GROWTH_HEADER.replace("[2.0,3.0,", "[null,3.0,");
    let Item::Run(h) = &parse(&[&null]).unwrap()[0] else {
        panic!()
    };
    assert!(h.info.init_weight_norms[0].is_nan());
    assert_eq!(learning::init_norms(&h.info), [None, Some(5.0)]);

    for bad in ["[2.0,3.0,4.0]", "[2.0,-3.0,4.0,1.0]"] {
        let header = GROWTH_HEADER.replace("[2.0,3.0,4.0,1.0]", bad);
        let e = parse(&[&header]).unwrap_err();
        assert!(matches!(e, StreamError::Header { line: 1, .. }), "{e}");
        assert!(e.to_string().contains("init_weight_norms"), "{e}");
    }
}
