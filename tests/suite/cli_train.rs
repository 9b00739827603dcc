//! `resviz train` refuses bad options and configs with exactly one line on stderr and a non-zero
//! exit, before training anything (issue 4).

fn train(args: &[&str]) -> std::process::Output {
    crate::common::command(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .arg("train")
        .args(["--models", "v1-8", "--dataset", "synthetic"])
        .args(args)
        .args(if args.contains(&"--steps") {
            &[][..]
        } else {
            &["--steps", "1"][..]
        })
        .output()
        .expect("run resviz")
}

fn assert_one_line_error(args: &[&str], needle: &str) {
    let out = train(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(err.lines().count(), 1, "{args:?} printed:\n{err}");
    assert!(err.starts_with("resviz: error: "), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn bad_options_give_one_line() {
    assert_one_line_error(&["--lr=-0.1"], "--lr must be a positive number");
    assert_one_line_error(&["--lr", "0"], "--lr must be a positive number");
    assert_one_line_error(&["--steps", "0"], "--steps must be at least 1");
    assert_one_line_error(&["--optimizer", "adamw"], "unknown optimizer 'adamw'");
}

#[test]
fn bad_configs_give_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let unknown = write("unknown.ron", r#"(models: ["v1-8"], colour: 3)"#);
    assert_one_line_error(&["--config", &unknown], "Unexpected field named `colour`");
    let truncated = write("truncated.ron", r#"(models: ["v1-8""#);
    assert_one_line_error(&["--config", &truncated], "truncated.ron: 1:");
    let missing = dir.path().join("missing.ron");
    let missing = missing.to_str().unwrap();
    let out = train(&["--config", missing]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.lines().count() == 1, "{err}");
    assert_eq!(
        err.matches("No such file").count(),
        1,
        "cause repeated: {err}"
    );
}

/// `--until-plateau` stops once every run's windowed loss stops falling by the tolerance: with
/// a tolerance of 99 % every window after the first two counts as levelled off, so training
/// stops right after step 2 × window, long before the cap, and the summary says where.
#[test]
fn until_plateau_stops_before_the_cap_and_says_where() {
    let out = train(&[
        "--width",
        "4",
        "--until-plateau",
        "--plateau-window",
        "3",
        "--plateau-tol",
        "0.99",
        "--steps",
        "300",
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["plateau"]["rule"]["window"], 3);
    assert_eq!(v["plateau"]["rule"]["max_steps"], 300);
    assert_eq!(v["plateau"]["reached_at"], serde_json::json!([6]));
    for m in v["models"].as_array().unwrap() {
        let steps = m["steps"].as_u64().unwrap();
        assert!((6..100).contains(&steps), "stopped at {steps}");
    }
    assert_one_line_error(
        &["--until-plateau", "--plateau-window", "0"],
        "--plateau-window",
    );
    assert_one_line_error(&["--until-plateau", "--epochs", "1"], "--until-plateau");
}
